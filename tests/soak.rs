#![cfg(all(feature = "tokio", feature = "deflate"))]
//! A soak test over loopback: 10,000 concurrent WebSocket connections to the
//! tokio echo server (`examples/echo_server.rs`' serve loop, `Config::default()`),
//! which runs in a separate process so that its memory and file descriptors
//! can be measured from `/proc`.
//!
//! ```text
//! cargo test --release --all-features --test soak -- --ignored --nocapture
//! ```
//!
//! The test re-executes its own binary as the server (the ignored test
//! `soak_server_process`, which does nothing unless `WSMACHINE_SOAK_SERVER=1`
//! is set), raises both processes' soft file limit to the hard limit, then:
//!
//! 1. opens the connections, 256 handshakes at a time (retried, bounded), half
//!    offering permessage-deflate (`Config::default()`), half without it
//!    (`config.deflate = None`);
//! 2. once all are open, has each one send JSON-like text messages of 16 B to
//!    4 KiB and check every echo, for `WSMACHINE_SOAK_SECS` seconds (default
//!    20); one connection in twenty instead stops at a random point of the
//!    phase by writing part of a frame (a masked header announcing 1000 bytes
//!    and 10 of them) on the raw socket and dropping it;
//! 3. lets the rest sit idle for 2 s (past the 1 s `buffer_release_delay`),
//!    closes them with 1000, waits for the server's descriptors to return to
//!    their baseline, and echoes one message over a fresh connection.
//!
//! It prints a table: connections and how many negotiated deflate, messages
//! echoed and their rate, the CPU time the server, the client and the rest
//! of the machine used meanwhile, the server's memory before any
//! connection, with all connected, at its peak (`VmHWM`) and with the
//! connections idle (and per idle connection), the server's descriptor count
//! before, during and after, and the client process's peak RSS. Memory is
//! given as RSS (`/proc/<pid>/status`) and as heap in use (a counting global
//! allocator in the test binary): the allocator keeps what is freed, so only
//! the heap shows buffers released and connections gone. It fails on any
//! connection error, a wrong echo, a descriptor or heap leak, or a server
//! that no longer echoes.
//!
//! `WSMACHINE_SOAK_CONNS` sets the number of connections (default 10000) for
//! a quicker run. With the default memory setting (zlib states shared from
//! a pool, 12-bit windows) a compressing connection keeps about 12 KiB once
//! idle; with `WSM_DEFLATE=dedicated:8` about 420 KiB (see
//! `src/deflate/mod.rs`), so 5,000 deflate connections take about 2 GiB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep, timeout};
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::handshake::ClientRequest;
use wsmachine::{CloseCode, Config, Event};

#[path = "../examples/support/soak_message.rs"]
mod soak_message;
use soak_message::{Rng, json_message};

/// Set in the server process's environment.
const SERVER_ENV: &str = "WSMACHINE_SOAK_SERVER";
/// The number of connections.
const CONNS_ENV: &str = "WSMACHINE_SOAK_CONNS";
const DEFAULT_CONNS: usize = 10_000;
/// The length of the message phase, in seconds.
const SECS_ENV: &str = "WSMACHINE_SOAK_SECS";
const DEFAULT_SECS: u64 = 20;

/// Handshakes in flight at once, so that the listen backlog is not overrun.
const CONNECT_CONCURRENCY: usize = 256;
/// Attempts to open one connection.
const CONNECT_ATTEMPTS: u32 = 5;
/// The longest any single send, receive, connect or close may take.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Control frames (keepalive pings and pongs) tolerated while waiting for
/// one event: a bound on every receive loop.
const MAX_CONTROL_EVENTS: usize = 1000;
/// Messages one connection may send in the phase: a bound on its loop.
const MAX_MESSAGES_PER_CONNECTION: u64 = 10_000_000;
/// One connection in this many ends abruptly, mid-frame.
const ABRUPT_EVERY: usize = 20;
/// How long the connections sit idle before the server's idle RSS is read:
/// past `Config::buffer_release_delay` (1 s), so their buffers are freed.
const IDLE_WAIT: Duration = Duration::from_secs(2);
/// Descriptors the server may hold over its baseline once all are closed.
const FD_SLACK: usize = 4;
/// Heap bytes the server may hold over its baseline once all are closed.
const HEAP_SLACK: u64 = 1 << 20;
/// The server process ends by itself after this long, whatever happens.
const SERVER_LIFETIME: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------
// Heap accounting: the bytes allocated and not yet freed, in both processes
// (the same binary), so that the server's heap can be told from its RSS,
// which the allocator does not give back to the system as it frees.
// ---------------------------------------------------------------------------

struct CountingAlloc;

static HEAP: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// bookkeeping neither allocates nor panics.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            HEAP.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            HEAP.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        HEAP.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HEAP.fetch_add(new_size, Relaxed);
            HEAP.fetch_sub(layout.size(), Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

// ---------------------------------------------------------------------------
// The server process.
// ---------------------------------------------------------------------------

static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK_LIVE: AtomicUsize = AtomicUsize::new(0);
static OPENED: AtomicUsize = AtomicUsize::new(0);
static ECHOED: AtomicU64 = AtomicU64::new(0);
static CLOSED_CLEAN: AtomicUsize = AtomicUsize::new(0);
static CLOSED_ABNORMAL: AtomicUsize = AtomicUsize::new(0);
static CLOSED_OTHER: AtomicUsize = AtomicUsize::new(0);
static ERRORS: AtomicUsize = AtomicUsize::new(0);
static ACCEPT_ERRORS: AtomicUsize = AtomicUsize::new(0);

#[path = "../examples/support/deflate_setting.rs"]
mod deflate_setting;

/// The server's config: the default, with `WSM_DEFLATE`'s memory setting
/// (`WSM_DEFLATE=shared:12 cargo test ... --test soak`), one for every
/// connection so that a shared setting's pool is shared.
fn server_config() -> &'static Config {
    static CONFIG: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    CONFIG.get_or_init(|| deflate_setting::config_from_env(Config::default()))
}

/// The soak test's server: runs only in the process `soak` starts.
#[test]
#[ignore = "the soak test's server process, started by `soak`"]
fn soak_server_process() {
    if std::env::var_os(SERVER_ENV).is_none() {
        return;
    }
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(server_main());
    print_server_stats();
}

async fn server_main() {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(4096).unwrap();
    println!("LISTENING {}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    // Commands come on stdin, one a line; its end (the test's end, or its
    // death) stops the server.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) if line.trim() == "STATS" => print_server_stats(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = stop.send(());
    });
    tokio::select! {
        () = accept_loop(listener) => {}
        _ = stopped => {}
        () = sleep(SERVER_LIFETIME) => eprintln!("soak server: lifetime bound reached, exiting"),
    }
}

fn print_server_stats() {
    println!(
        "STATS heap={} accepted={} live={} peak_live={} opened={} echoed={} closed_clean={} \
         closed_abnormal={} closed_other={} errors={} accept_errors={}",
        HEAP.load(Relaxed),
        ACCEPTED.load(Relaxed),
        LIVE.load(Relaxed),
        PEAK_LIVE.load(Relaxed),
        OPENED.load(Relaxed),
        ECHOED.load(Relaxed),
        CLOSED_CLEAN.load(Relaxed),
        CLOSED_ABNORMAL.load(Relaxed),
        CLOSED_OTHER.load(Relaxed),
        ERRORS.load(Relaxed),
        ACCEPT_ERRORS.load(Relaxed),
    );
    let _ = std::io::stdout().flush();
}

async fn accept_loop(listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: wait for some to free.
                if ACCEPT_ERRORS.fetch_add(1, Relaxed) < 10 {
                    eprintln!("soak server: accept failed: {e}");
                }
                sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        ACCEPTED.fetch_add(1, Relaxed);
        let live = LIVE.fetch_add(1, Relaxed) + 1;
        PEAK_LIVE.fetch_max(live, Relaxed);
        tokio::spawn(async move {
            match serve(stream).await {
                Ok(code) if code == CloseCode::NORMAL => CLOSED_CLEAN.fetch_add(1, Relaxed),
                Ok(code) if code == CloseCode::ABNORMAL => CLOSED_ABNORMAL.fetch_add(1, Relaxed),
                Ok(_) => CLOSED_OTHER.fetch_add(1, Relaxed),
                Err(e) => {
                    let n = ERRORS.fetch_add(1, Relaxed);
                    if n < 10 {
                        eprintln!("soak server: connection ended: {e}");
                    }
                    n
                }
            };
            // The socket is closed by now: `serve` dropped it.
            LIVE.fetch_sub(1, Relaxed);
        });
    }
}

/// What the next event asks the server to do.
enum Reply {
    Text(String),
    Binary(Vec<u8>),
    Nothing,
    Stop(CloseCode),
}

/// `examples/echo_server.rs`' serve loop, returning how the connection closed.
async fn serve(stream: TcpStream) -> Result<CloseCode, wsmachine::adapter::Error> {
    stream.set_nodelay(true)?;
    let mut ws = WebSocket::accept(stream, server_config().clone()).await?;
    OPENED.fetch_add(1, Relaxed);
    loop {
        // The message is read in place; only the reply is copied.
        let reply = ws
            .recv_with(|event| match event {
                Event::Text(text) => Reply::Text(text.to_owned()),
                Event::Binary(data) => Reply::Binary(data.to_vec()),
                Event::Closed(info) => Reply::Stop(info.code()),
                _ => Reply::Nothing,
            })
            .await?;
        match reply {
            Reply::Text(text) => ws.send_text(&text).await?,
            Reply::Binary(data) => ws.send_binary(&data).await?,
            Reply::Nothing => continue,
            Reply::Stop(code) => return Ok(code),
        }
        ECHOED.fetch_add(1, Relaxed);
    }
}

// ---------------------------------------------------------------------------
// Measurements.
// ---------------------------------------------------------------------------

/// Raises this process's soft limit on open files to its hard limit.
fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).expect("raise RLIMIT_NOFILE")
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn fd_count(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A process's CPU time so far, user and system, in seconds (from
/// `/proc/<pid>/stat`, in ticks of `USER_HZ`, 100 on Linux).
fn cpu_secs(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which may hold spaces), from the state on.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields[i].parse::<u64>().unwrap() as f64 / 100.0;
    (ticks(11), ticks(12))
}

/// A process's minor page faults so far (`/proc/<pid>/stat`).
fn minor_faults(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    fields[7].parse().unwrap()
}

/// The whole machine's busy CPU time so far, in seconds (`/proc/stat`).
fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().unwrap())
        .collect();
    // user nice system idle iowait irq softirq steal ...: all but idle and iowait.
    let busy: u64 = ticks.iter().take(8).sum::<u64>() - ticks[3] - ticks[4];
    busy as f64 / 100.0
}

/// CPU time so far: the server's and the client's (user, system), and the
/// whole machine's busy time.
#[derive(Clone, Copy)]
struct CpuSample {
    server: (f64, f64),
    server_faults: u64,
    client: (f64, f64),
    machine: f64,
}

impl CpuSample {
    fn take(server_pid: &str) -> Self {
        Self {
            server: cpu_secs(server_pid),
            server_faults: minor_faults(server_pid),
            client: cpu_secs("self"),
            machine: machine_busy_secs(),
        }
    }
}

/// The server's memory at one point.
#[derive(Debug, Clone, Copy)]
struct Mem {
    rss_kib: u64,
    /// Bytes allocated and not freed.
    heap: u64,
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The server's counters, from a `STATS` line.
#[derive(Debug, Default)]
struct ServerStats(Vec<(String, u64)>);

impl ServerStats {
    fn parse(line: &str) -> Self {
        let rest = &line[line.find("STATS ").unwrap() + 6..];
        Self(
            rest.split_whitespace()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.parse().ok()?))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> u64 {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no {key} in the server's stats"))
            .1
    }
}

/// The server process; killed when dropped, unless it has exited.
struct ServerProcess {
    child: Child,
    pid: String,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl ServerProcess {
    fn spawn() -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "soak_server_process", "--nocapture"])
            .env(SERVER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server process");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            pid: child.id().to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// The next line of the server's stdout that contains `marker` (the
    /// harness's own lines may share it), from the marker on; other lines
    /// are echoed.
    fn wait_line(&self, marker: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match line.find(marker) {
                    Some(at) => return line[at..].to_string(),
                    None if !line.trim().is_empty() => println!("[server] {line}"),
                    None => {}
                },
                Err(e) => panic!("no {marker:?} line from the server within {limit:?}: {e}"),
            }
        }
    }

    fn stats(&mut self) -> ServerStats {
        let stdin = self.stdin.as_mut().expect("server stdin");
        stdin.write_all(b"STATS\n").unwrap();
        stdin.flush().unwrap();
        ServerStats::parse(&self.wait_line("STATS ", Duration::from_secs(10)))
    }

    fn rss_kib(&self) -> u64 {
        status_kib(&self.pid, "VmRSS")
    }

    /// The server's RSS and heap now.
    fn mem(&mut self) -> Mem {
        Mem {
            rss_kib: self.rss_kib(),
            heap: self.stats().get("heap"),
        }
    }

    fn peak_rss_kib(&self) -> u64 {
        status_kib(&self.pid, "VmHWM")
    }

    fn fds(&self) -> usize {
        fd_count(&self.pid)
    }

    /// Closes its stdin and waits, bounded, for it to exit.
    fn shut_down(&mut self) -> bool {
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Forward what it printed last.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    if !line.trim().is_empty() {
                        println!("[server] {line}");
                    }
                }
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            eprintln!("killing the server process {}", self.pid);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// The clients.
// ---------------------------------------------------------------------------

type Ws = WebSocket<TcpStream>;

/// Where the test is; every connection follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Opening connections; the open ones wait.
    Connect,
    /// Sending messages until the deadline.
    Run(Instant),
    /// Idle: the connections wait.
    Idle,
    /// Closing.
    Close,
}

/// What the connections share with the test.
struct Shared {
    addr: String,
    request: ClientRequest,
    connect_slots: Semaphore,
    connected: AtomicUsize,
    deflate: AtomicUsize,
    connect_retries: AtomicUsize,
    /// Left the message phase, normally or abruptly.
    finished: AtomicUsize,
    abrupt: AtomicUsize,
    messages: AtomicU64,
    bytes: AtomicU64,
    closed: AtomicUsize,
    failed: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn fail(&self, i: usize, error: String) {
        self.failed.fetch_add(1, Relaxed);
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        if errors.len() < 20 {
            errors.push(format!("connection {i}: {error}"));
        }
    }

    fn check_no_failure(&self, stage: &str) {
        let failed = self.failed.load(Relaxed);
        if failed > 0 {
            let errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
            let first = errors.join("\n  ");
            drop(errors);
            panic!("{failed} connections failed during {stage}; the first ones:\n  {first}");
        }
    }
}

/// The next stage after `past`, or `None` if the test is gone.
async fn next_stage(stage: &mut watch::Receiver<Stage>, past: Stage) -> Option<Stage> {
    stage.wait_for(|s| *s != past).await.ok().map(|s| *s)
}

/// What a client received.
enum Got {
    Text,
    WrongText(usize),
    Control,
    Closed { clean: bool, code: u16 },
    Other,
}

fn classify(event: Event<'_>, expected: &str) -> Got {
    match event {
        Event::Text(text) if text == expected => Got::Text,
        Event::Text(text) => Got::WrongText(text.len()),
        Event::Ping(_) | Event::Pong(_) => Got::Control,
        Event::Closed(info) => Got::Closed {
            clean: info.is_clean(),
            code: info.code().into(),
        },
        _ => Got::Other,
    }
}

/// Waits for the test to move past `past`, answering pings meanwhile (the
/// receive is cancel-safe); no data may arrive.
async fn wait_stage(
    ws: &mut Ws,
    stage: &mut watch::Receiver<Stage>,
    past: Stage,
) -> Result<Stage, String> {
    for _ in 0..MAX_CONTROL_EVENTS {
        let got = tokio::select! {
            next = next_stage(stage, past) => return next.ok_or_else(|| "the test is gone".into()),
            got = ws.recv_with(|event| classify(event, "")) => got,
        };
        match got {
            Ok(Got::Control) => {}
            Ok(Got::Closed { code, .. }) => {
                return Err(format!("closed by the server ({code}) while waiting"));
            }
            Ok(_) => return Err("unexpected data while waiting".into()),
            Err(e) => return Err(format!("while waiting: {e}")),
        }
    }
    Err("too many control frames while waiting".into())
}

async fn open(shared: &Shared, config: Config) -> Result<Ws, String> {
    let mut last = String::new();
    for attempt in 1..=CONNECT_ATTEMPTS {
        let result = timeout(IO_TIMEOUT, async {
            let stream = TcpStream::connect(&shared.addr)
                .await
                .map_err(|e| format!("TCP connect: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            WebSocket::connect(stream, &shared.request, config.clone())
                .await
                .map_err(|e| format!("handshake: {e}"))
        })
        .await;
        match result {
            Ok(Ok(ws)) => return Ok(ws),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no connection within {IO_TIMEOUT:?}"),
        }
        if attempt < CONNECT_ATTEMPTS {
            shared.connect_retries.fetch_add(1, Relaxed);
            sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
    }
    Err(format!(
        "{CONNECT_ATTEMPTS} attempts failed, the last: {last}"
    ))
}

/// Sends `text` and waits for its echo.
async fn echo(ws: &mut Ws, text: &str) -> Result<(), String> {
    timeout(IO_TIMEOUT, ws.send_text(text))
        .await
        .map_err(|_| "send timed out")?
        .map_err(|e| format!("send: {e}"))?;
    for _ in 0..MAX_CONTROL_EVENTS {
        let got = timeout(IO_TIMEOUT, ws.recv_with(|event| classify(event, text)))
            .await
            .map_err(|_| format!("no echo within {IO_TIMEOUT:?}"))?
            .map_err(|e| format!("recv: {e}"))?;
        match got {
            Got::Text => return Ok(()),
            Got::Control => {}
            Got::WrongText(len) => {
                return Err(format!(
                    "the echo differs: sent {} bytes, got {len}",
                    text.len()
                ));
            }
            Got::Closed { code, .. } => return Err(format!("closed by the server ({code})")),
            Got::Other => return Err("unexpected event instead of the echo".into()),
        }
    }
    Err("too many control frames before the echo".into())
}

/// Ends the connection abruptly: part of a masked text frame that announces
/// 1000 bytes, then the socket is dropped.
async fn end_abruptly(ws: Ws, rng: &mut Rng) -> Result<(), String> {
    let (mut stream, _conn) = ws.into_parts();
    let mask = rng.next().to_be_bytes();
    let mut frame = vec![0x81, 0x80 | 126, 0x03, 0xE8];
    frame.extend_from_slice(&mask[..4]);
    frame.extend(
        b"{\"partial\""
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4]),
    );
    timeout(IO_TIMEOUT, stream.write_all(&frame))
        .await
        .map_err(|_| "partial frame write timed out")?
        .map_err(|e| format!("partial frame write: {e}"))?;
    drop(stream);
    Ok(())
}

async fn client(i: usize, shared: Arc<Shared>, mut stage: watch::Receiver<Stage>) {
    if let Err(e) = client_inner(i, &shared, &mut stage).await {
        shared.fail(i, e);
    }
}

async fn client_inner(
    i: usize,
    shared: &Shared,
    stage: &mut watch::Receiver<Stage>,
) -> Result<(), String> {
    let offer_deflate = i.is_multiple_of(2);
    // One in twenty of each kind, deflate or not.
    let abrupt = (i / 2) % ABRUPT_EVERY == ABRUPT_EVERY / 2;
    let mut rng = Rng(0x5eed_0000 + i as u64);
    let mut config = Config::default();
    if !offer_deflate {
        config.deflate = None;
    }

    let slot = shared
        .connect_slots
        .acquire()
        .await
        .map_err(|e| e.to_string())?;
    let mut ws = open(shared, config).await?;
    drop(slot);
    let negotiated = ws
        .connection()
        .negotiated()
        .extensions
        .as_deref()
        .is_some_and(|e| e.contains("permessage-deflate"));
    if negotiated != offer_deflate {
        return Err(format!(
            "deflate offered: {offer_deflate}, negotiated: {:?}",
            ws.connection().negotiated().extensions
        ));
    }
    if negotiated {
        shared.deflate.fetch_add(1, Relaxed);
    }
    shared.connected.fetch_add(1, Relaxed);

    let Stage::Run(deadline) = wait_stage(&mut ws, stage, Stage::Connect).await? else {
        return Err("the message phase was skipped".into());
    };
    let start = Instant::now();
    let abort_at = abrupt.then(|| {
        let span = deadline.saturating_duration_since(start);
        start + span.mul_f64(rng.below(1000) as f64 / 1000.0)
    });
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut outcome = Ok(());
    for seq in 0..MAX_MESSAGES_PER_CONNECTION {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if abort_at.is_some_and(|at| now >= at) {
            break;
        }
        let text = json_message(&mut rng, i, seq);
        if let Err(e) = echo(&mut ws, &text).await {
            outcome = Err(format!("message {seq}: {e}"));
            break;
        }
        messages += 1;
        bytes += text.len() as u64;
    }
    shared.messages.fetch_add(messages, Relaxed);
    shared.bytes.fetch_add(bytes, Relaxed);
    outcome?;
    if abrupt {
        end_abruptly(ws, &mut rng).await?;
        shared.abrupt.fetch_add(1, Relaxed);
        shared.finished.fetch_add(1, Relaxed);
        return Ok(());
    }
    shared.finished.fetch_add(1, Relaxed);

    let mut now = *stage.borrow();
    while now != Stage::Close {
        now = wait_stage(&mut ws, stage, now).await?;
    }
    timeout(IO_TIMEOUT, ws.close(CloseCode::NORMAL, ""))
        .await
        .map_err(|_| "close timed out")?
        .map_err(|e| format!("close: {e}"))?;
    let mut closed = false;
    for _ in 0..MAX_CONTROL_EVENTS {
        let got = timeout(IO_TIMEOUT, ws.recv_with(|event| classify(event, "")))
            .await
            .map_err(|_| "no close frame back")?
            .map_err(|e| format!("closing: {e}"))?;
        match got {
            Got::Closed { clean: true, .. } => {
                closed = true;
                break;
            }
            Got::Closed { code, .. } => return Err(format!("unclean close ({code})")),
            Got::Control => {}
            _ => return Err("data after close".into()),
        }
    }
    if !closed {
        return Err("too many control frames while closing".into());
    }
    timeout(IO_TIMEOUT, ws.close_transport())
        .await
        .map_err(|_| "the server did not close the transport")?
        .map_err(|e| format!("close_transport: {e}"))?;
    shared.closed.fetch_add(1, Relaxed);
    Ok(())
}

/// Polls `done` every 50 ms until it holds, for at most `limit`: how long it
/// took, or `None` if it did not hold in time.
async fn wait_until(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    let mut last_report = start;
    loop {
        if done() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            println!("soak: {what}: not done within {limit:?}");
            return None;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!("  ... still waiting: {what} ({:.0?})", start.elapsed());
            last_report = Instant::now();
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// Connects, echoes one message, closes cleanly.
async fn fresh_echo(addr: &str, text: &str) -> Result<(), String> {
    let request = ClientRequest::new(&format!("ws://{addr}/fresh")).unwrap();
    let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "TCP connect timed out")?
        .map_err(|e| format!("TCP connect: {e}"))?;
    let mut ws = timeout(
        IO_TIMEOUT,
        WebSocket::connect(stream, &request, Config::default()),
    )
    .await
    .map_err(|_| "handshake timed out")?
    .map_err(|e| format!("handshake: {e}"))?;
    echo(&mut ws, text).await?;
    timeout(IO_TIMEOUT, ws.close(CloseCode::NORMAL, ""))
        .await
        .map_err(|_| "close timed out")?
        .map_err(|e| format!("close: {e}"))?;
    for _ in 0..MAX_CONTROL_EVENTS {
        let got = timeout(IO_TIMEOUT, ws.recv_with(|event| classify(event, "")))
            .await
            .map_err(|_| "no close frame back")?
            .map_err(|e| format!("closing: {e}"))?;
        match got {
            Got::Closed { clean: true, .. } => {
                return timeout(IO_TIMEOUT, ws.close_transport())
                    .await
                    .map_err(|_| "the server did not close the transport")?
                    .map_err(|e| format!("close_transport: {e}"));
            }
            Got::Closed { code, .. } => return Err(format!("unclean close ({code})")),
            Got::Control => {}
            _ => return Err("data after close".into()),
        }
    }
    Err("too many control frames while closing".into())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a valid value")),
        Err(_) => default,
    }
}

#[test]
#[ignore = "a soak test of 10,000 connections: run it with --release --ignored --nocapture"]
fn soak() {
    let total_start = std::time::Instant::now();
    let conns: usize = env_or(CONNS_ENV, DEFAULT_CONNS);
    let secs: u64 = env_or(SECS_ENV, DEFAULT_SECS);
    assert!(conns > 0 && secs > 0);
    let nofile = raise_fd_limit();
    println!("soak: {conns} connections, {secs} s of messages; open-file limit {nofile}");

    let mut server = ServerProcess::spawn();
    let listening = server.wait_line("LISTENING ", Duration::from_secs(60));
    let addr = listening["LISTENING ".len()..].trim().to_string();
    println!("soak: server process {} on {addr}", server.pid);
    // Let it settle (its runtime's threads start) before the baseline.
    std::thread::sleep(Duration::from_millis(300));
    let base = server.mem();
    let base_fds = server.fds();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let shared = Arc::new(Shared {
        request: ClientRequest::new(&format!("ws://{addr}/soak")).unwrap(),
        addr,
        connect_slots: Semaphore::new(CONNECT_CONCURRENCY),
        connected: AtomicUsize::new(0),
        deflate: AtomicUsize::new(0),
        connect_retries: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        abrupt: AtomicUsize::new(0),
        messages: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        closed: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        errors: Mutex::new(Vec::new()),
    });

    let report = runtime.block_on(run(&mut server, &shared, conns, secs, base, base_fds));
    drop(runtime);
    report.print(total_start.elapsed());
    report.check();
    assert!(
        server.shut_down(),
        "the server process did not exit cleanly"
    );
}

/// The figures of a run.
struct Report {
    conns: usize,
    secs: u64,
    connect_time: Duration,
    connect_retries: usize,
    deflate: usize,
    abrupt: usize,
    closed: usize,
    close_time: Duration,
    run_time: Duration,
    messages: u64,
    bytes: u64,
    server_echoed: u64,
    /// CPU seconds in the message phase: server and client (user, system),
    /// and the rest of the machine.
    server_cpu: (f64, f64),
    server_faults: u64,
    client_cpu: (f64, f64),
    others_cpu: f64,
    base: Mem,
    connected: Mem,
    connected_idle: Mem,
    idle: Mem,
    closed_mem: Mem,
    server_peak: u64,
    client_peak: u64,
    live: u64,
    closed_live: u64,
    base_fds: usize,
    connected_fds: usize,
    idle_fds: usize,
    closed_fds: usize,
    fd_time: Option<Duration>,
    fresh: Result<(), String>,
    end: ServerStats,
}

async fn run(
    server: &mut ServerProcess,
    s: &Arc<Shared>,
    conns: usize,
    secs: u64,
    base: Mem,
    base_fds: usize,
) -> Report {
    let (stage_tx, stage_rx) = watch::channel(Stage::Connect);
    let mut tasks = Vec::with_capacity(conns);
    for i in 0..conns {
        tasks.push(tokio::spawn(client(i, s.clone(), stage_rx.clone())));
    }
    drop(stage_rx);

    // 1. Open them all.
    let opening = || s.connected.load(Relaxed) + s.failed.load(Relaxed) >= conns;
    let connect_time = wait_until("opening the connections", Duration::from_secs(600), opening)
        .await
        .expect("the connections did not open in time");
    s.check_no_failure("the opening handshakes");
    let opened = server.stats().get("opened");
    assert_eq!(
        opened, conns as u64,
        "the server's count of open connections"
    );
    let connected = server.mem();
    let connected_fds = server.fds();
    println!(
        "soak: {conns} connections open in {connect_time:.1?}; server RSS {}, {connected_fds} fds",
        mib(connected.rss_kib),
    );

    // All connected and idle, before any message (no zlib state yet).
    sleep(IDLE_WAIT).await;
    let connected_idle = server.mem();

    // 2. Messages.
    let cpu_start = CpuSample::take(&server.pid);
    let run_start = Instant::now();
    stage_tx.send_replace(Stage::Run(run_start + Duration::from_secs(secs)));
    let running = || s.finished.load(Relaxed) + s.failed.load(Relaxed) >= conns;
    let run_limit = Duration::from_secs(secs) + IO_TIMEOUT * 3;
    let run_time = wait_until("the message phase", run_limit, running)
        .await
        .expect("the message phase did not end in time");
    let cpu_end = CpuSample::take(&server.pid);
    s.check_no_failure("the message phase");
    let messages = s.messages.load(Relaxed);
    let abrupt = s.abrupt.load(Relaxed);
    let server_echoed = server.stats().get("echoed");
    println!("soak: {messages} messages echoed in {run_time:.1?}");

    // 3. Idle.
    stage_tx.send_replace(Stage::Idle);
    sleep(IDLE_WAIT).await;
    let live = server.stats().get("live");
    let idle = server.mem();
    let idle_fds = server.fds();

    // 4. Close them all, normally.
    stage_tx.send_replace(Stage::Close);
    let closing = || s.closed.load(Relaxed) + s.failed.load(Relaxed) >= conns - abrupt;
    let close_time = wait_until("closing the connections", IO_TIMEOUT * 4, closing)
        .await
        .expect("the connections did not close in time");
    s.check_no_failure("the closing handshakes");
    for task in tasks {
        let ended = timeout(IO_TIMEOUT, task).await;
        ended.expect("a client task hangs").unwrap();
    }
    let fds_back = || server.fds() <= base_fds + FD_SLACK;
    let fd_time = wait_until(
        "the server's fds returning",
        Duration::from_secs(30),
        fds_back,
    )
    .await;
    let closed_fds = server.fds();
    let closed_mem = server.mem();
    let closed_live = server.stats().get("live");

    // 5. A fresh connection still echoes.
    let fresh = fresh_echo(&s.addr, &json_message(&mut Rng(42), conns, 0)).await;
    // Its end, counted by the server.
    let none_live = || server.stats().get("live") == 0;
    wait_until(
        "the server's live count",
        Duration::from_secs(10),
        none_live,
    )
    .await;
    let end = server.stats();

    let diff = |a: (f64, f64), b: (f64, f64)| (b.0 - a.0, b.1 - a.1);
    let server_cpu = diff(cpu_start.server, cpu_end.server);
    let client_cpu = diff(cpu_start.client, cpu_end.client);
    let ours = server_cpu.0 + server_cpu.1 + client_cpu.0 + client_cpu.1;
    Report {
        conns,
        secs,
        connect_time,
        connect_retries: s.connect_retries.load(Relaxed),
        deflate: s.deflate.load(Relaxed),
        abrupt,
        closed: s.closed.load(Relaxed),
        close_time,
        run_time,
        messages,
        bytes: s.bytes.load(Relaxed),
        server_echoed,
        server_cpu,
        server_faults: cpu_end.server_faults - cpu_start.server_faults,
        client_cpu,
        others_cpu: (cpu_end.machine - cpu_start.machine - ours).max(0.0),
        base,
        connected,
        connected_idle,
        idle,
        closed_mem,
        server_peak: server.peak_rss_kib(),
        client_peak: status_kib("self", "VmHWM"),
        live,
        closed_live,
        base_fds,
        connected_fds,
        idle_fds,
        closed_fds,
        fd_time,
        fresh,
        end,
    }
}

impl Report {
    /// The server's RSS and heap, and their growth over the baseline per
    /// connection.
    fn mem(&self, mem: Mem, n: u64) -> String {
        let n = n.max(1) as f64;
        let rss = mem.rss_kib.saturating_sub(self.base.rss_kib) as f64 / n;
        let heap = mem.heap.saturating_sub(self.base.heap) as f64 / 1024.0 / n;
        format!(
            "{} RSS ({rss:.1} KiB/conn), {} heap ({heap:.1} KiB/conn)",
            mib(mem.rss_kib),
            mib(mem.heap / 1024),
        )
    }

    fn print(&self, total: Duration) {
        let row = |k: &str, v: String| println!("{k:<42} {v}");
        let secs = self.run_time.as_secs_f64();
        let text_mib = self.bytes as f64 / f64::from(1 << 20);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (server_cpu, client_cpu) = (self.server_cpu, self.client_cpu);
        let end = &self.end;
        println!();
        println!(
            "==== wsmachine soak: {} connections over loopback ====",
            self.conns
        );
        row(
            "connections opened",
            format!(
                "{} in {:.1?} ({} connect retries)",
                self.conns, self.connect_time, self.connect_retries
            ),
        );
        row(
            "  with permessage-deflate negotiated",
            self.deflate.to_string(),
        );
        row("  without", (self.conns - self.deflate).to_string());
        row("  ended abruptly mid-frame", self.abrupt.to_string());
        row(
            "  closed normally (1000) at the end",
            format!("{} in {:.1?}", self.closed, self.close_time),
        );
        row(
            "message phase",
            format!("{:.1?} (WSMACHINE_SOAK_SECS={})", self.run_time, self.secs),
        );
        row(
            "messages echoed and checked",
            format!("{} (server's count {})", self.messages, self.server_echoed),
        );
        row(
            "messages per second",
            format!("{:.0}", self.messages as f64 / secs),
        );
        row(
            "text echoed",
            format!("{text_mib:.1} MiB each way, {:.1} MiB/s", text_mib / secs),
        );
        row(
            "CPU in the phase: server (user + sys)",
            format!(
                "{:.1} s + {:.1} s ({:.0} µs per message; {} minor page faults)",
                server_cpu.0,
                server_cpu.1,
                (server_cpu.0 + server_cpu.1) * 1e6 / self.messages.max(1) as f64,
                self.server_faults,
            ),
        );
        row(
            "CPU in the phase: client (user + sys)",
            format!("{:.1} s + {:.1} s", client_cpu.0, client_cpu.1),
        );
        row(
            "CPU in the phase: other processes",
            format!("{:.1} s (of {cores} cores x {secs:.1} s)", self.others_cpu),
        );
        let conns = self.conns as u64;
        let whole = |mem: Mem| format!("{} RSS, {} heap", mib(mem.rss_kib), mib(mem.heap / 1024));
        row("server memory before any connection", whole(self.base));
        row(
            "server memory with all connected",
            self.mem(self.connected, conns),
        );
        row(
            &format!("  idle {} s later, before any message", IDLE_WAIT.as_secs()),
            self.mem(self.connected_idle, conns),
        );
        row("server peak RSS (VmHWM)", mib(self.server_peak));
        row(
            &format!(
                "server memory idle {} s after the phase",
                IDLE_WAIT.as_secs()
            ),
            self.mem(self.idle, self.live),
        );
        row("  live connections then", self.live.to_string());
        row("server memory after all closed", whole(self.closed_mem));
        row(
            "server fds before the connections",
            self.base_fds.to_string(),
        );
        row(
            "server fds with them open",
            format!("{} (idle: {})", self.connected_fds, self.idle_fds),
        );
        row(
            "server fds after all closed",
            match self.fd_time {
                Some(t) => format!("{} (back in {t:.1?})", self.closed_fds),
                None => format!("{}: NOT back to the baseline", self.closed_fds),
            },
        );
        row(
            "server: connections ended",
            format!(
                "accepted {}: 1000 {}, 1006 {}, other code {}, errors {}; accept errors {}",
                end.get("accepted"),
                end.get("closed_clean"),
                end.get("closed_abnormal"),
                end.get("closed_other"),
                end.get("errors"),
                end.get("accept_errors"),
            ),
        );
        row(
            "fresh connection after all closed",
            match &self.fresh {
                Ok(()) => "echoed one message, closed cleanly".into(),
                Err(e) => format!("FAILED: {e}"),
            },
        );
        row("client peak RSS (VmHWM)", mib(self.client_peak));
        row("total time", format!("{total:.1?}"));
        println!();
    }

    fn check(&self) {
        let (conns, abrupt, end) = (self.conns as u64, self.abrupt as u64, &self.end);
        assert!(
            self.fd_time.is_some(),
            "the server leaks descriptors: {} open, {} before the connections",
            self.closed_fds,
            self.base_fds
        );
        // A shared memory setting's pool (the default) keeps up to 16
        // compressors (at most 371 KiB) and 128 decompressors (46 KiB) once
        // the connections are gone.
        let shared = server_config()
            .deflate
            .as_ref()
            .is_some_and(|d| matches!(d.memory, wsmachine::deflate::Memory::Shared { .. }));
        let pool = if shared {
            (16 * 371 + 128 * 46) << 10
        } else {
            0
        };
        assert!(
            self.closed_mem.heap <= self.base.heap + HEAP_SLACK + pool,
            "the server's heap after all closed: {} bytes, {} before the connections",
            self.closed_mem.heap,
            self.base.heap
        );
        assert_eq!(
            self.closed_live, 0,
            "connections live in the server after all closed"
        );
        assert_eq!(self.live, conns - abrupt, "live connections while idle");
        if let Err(e) = &self.fresh {
            panic!("a fresh connection after the soak: {e}");
        }
        assert_eq!(
            end.get("errors"),
            0,
            "connections ended by an error in the server"
        );
        assert_eq!(end.get("accept_errors"), 0, "accept errors in the server");
        assert_eq!(
            end.get("closed_abnormal"),
            abrupt,
            "connections the server saw end without a close"
        );
        assert_eq!(
            end.get("closed_clean"),
            conns - abrupt + 1,
            "connections the server saw close with 1000"
        );
        assert_eq!(
            end.get("echoed"),
            self.messages + 1,
            "messages the server echoed"
        );
    }
}
