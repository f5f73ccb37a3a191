//! A memory soak against any echo server over loopback: many connections,
//! each negotiating permessage-deflate with Chromium's offer
//! (`permessage-deflate; client_max_window_bits`), exchanging JSON, then
//! idle; the server's RSS per connection is read from `/proc`.
//!
//! ```text
//! soak [--conns N] [--secs S] [--label L] --port P -- SERVER COMMAND...
//! ```
//!
//! It starts SERVER COMMAND (which must listen on 127.0.0.1:P, and may be
//! wrapped in `taskset`), waits for the port, reads the server's RSS, then:
//!
//! 1. opens N connections (default 10,000), 256 handshakes at a time, with
//!    wsmachine's client and its default offer, which is Chromium's; each
//!    must negotiate permessage-deflate;
//! 2. has every connection echo JSON-like text messages of 16 B to 4 KiB for
//!    S seconds (default 20), each echo checked;
//! 3. lets them sit idle for 2 s, reads the server's RSS and peak RSS, closes
//!    them all with 1000 and stops the server (the PID it started).
//!
//! It prints one markdown row: label, connections, RSS per idle connection
//! ((idle RSS − RSS before any connection) / N), peak RSS, echoes per second,
//! and the extension the server answered. It exits non-zero on any
//! connection error or wrong echo. Both processes need a descriptor limit
//! above N (`ulimit -n`). `benches/peers/run_soak.sh` runs it against every
//! server in turn.

use std::error::Error;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::handshake::ClientRequest;
use wsmachine::{CloseCode, Config, Event};

#[path = "../../../../examples/support/soak_message.rs"]
mod soak_message;
use soak_message::{Rng, json_message};

type BoxError = Box<dyn Error + Send + Sync>;
type Ws = WebSocket<TcpStream>;

/// Handshakes in flight at once, so that the listen backlog is not overrun.
const CONNECT_BATCH: usize = 256;
/// Attempts to open one connection.
const CONNECT_ATTEMPTS: u32 = 5;
/// The longest any single connect, send, receive or close may take.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Control frames tolerated while waiting for one echo: a bound on the loop.
const MAX_CONTROL_EVENTS: usize = 1000;
/// Past wsmachine's `buffer_release_delay` (1 s), so idle buffers are freed.
const IDLE_WAIT: Duration = Duration::from_secs(2);

struct Args {
    conns: usize,
    secs: u64,
    label: String,
    port: u16,
    server: Vec<String>,
}

fn parse_args() -> Result<Args, BoxError> {
    let usage = "usage: soak [--conns N] [--secs S] [--label L] --port P -- SERVER COMMAND...";
    let mut args = std::env::args().skip(1);
    let (mut conns, mut secs, mut label, mut port) = (10_000, 20, None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(usage);
        match arg.as_str() {
            "--conns" => conns = value()?.parse()?,
            "--secs" => secs = value()?.parse()?,
            "--label" => label = Some(value()?),
            "--port" => port = Some(value()?.parse()?),
            "--" => break,
            _ => return Err(usage.into()),
        }
    }
    let server: Vec<String> = args.collect();
    if server.is_empty() {
        return Err(usage.into());
    }
    Ok(Args {
        conns,
        secs,
        label: label.unwrap_or_else(|| server.join(" ")),
        port: port.ok_or(usage)?,
        server,
    })
}

/// A field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The server process, stopped when dropped.
struct Server(Child);

impl Server {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn open(port: u16) -> Result<Ws, String> {
    let request =
        ClientRequest::new(&format!("ws://127.0.0.1:{port}/")).map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 1..=CONNECT_ATTEMPTS {
        let result = timeout(IO_TIMEOUT, async {
            let stream = TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| format!("TCP connect: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            // The default client offers `permessage-deflate;
            // client_max_window_bits`, as Chromium does.
            WebSocket::connect(stream, &request, Config::default())
                .await
                .map_err(|e| format!("handshake: {e}"))
        })
        .await;
        match result {
            Ok(Ok(ws)) => return Ok(ws),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no connection within {IO_TIMEOUT:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
    }
    Err(format!(
        "{CONNECT_ATTEMPTS} attempts failed, the last: {last}"
    ))
}

enum Got {
    Echo,
    Wrong(usize),
    Control,
    Other(String),
}

/// Sends `text` and waits for its echo.
async fn echo(ws: &mut Ws, text: &str) -> Result<(), String> {
    timeout(IO_TIMEOUT, ws.send_text(text))
        .await
        .map_err(|_| "send timed out")?
        .map_err(|e| format!("send: {e}"))?;
    for _ in 0..MAX_CONTROL_EVENTS {
        let got = timeout(
            IO_TIMEOUT,
            ws.recv_with(|event| match event {
                Event::Text(t) if t == text => Got::Echo,
                Event::Text(t) => Got::Wrong(t.len()),
                Event::Ping(_) | Event::Pong(_) => Got::Control,
                other => Got::Other(format!("{other:?}")),
            }),
        )
        .await
        .map_err(|_| format!("no echo within {IO_TIMEOUT:?}"))?
        .map_err(|e| format!("recv: {e}"))?;
        match got {
            Got::Echo => return Ok(()),
            Got::Control => {}
            Got::Wrong(len) => {
                return Err(format!("echo of {} bytes came back as {len}", text.len()));
            }
            Got::Other(what) => return Err(format!("{what} instead of the echo")),
        }
    }
    Err("too many control frames before the echo".into())
}

/// Echoes messages on `ws` until `deadline`; returns it and the count.
async fn run(i: usize, mut ws: Ws, deadline: Instant) -> Result<(Ws, u64), String> {
    let mut rng = Rng(0x5eed_0000 + i as u64);
    let mut n = 0;
    while Instant::now() < deadline {
        let text = json_message(&mut rng, i, n);
        echo(&mut ws, &text)
            .await
            .map_err(|e| format!("connection {i}, message {n}: {e}"))?;
        n += 1;
    }
    Ok((ws, n))
}

async fn close(mut ws: Ws) -> Result<(), String> {
    timeout(IO_TIMEOUT, ws.close(CloseCode::NORMAL, ""))
        .await
        .map_err(|_| "close timed out")?
        .map_err(|e| format!("close: {e}"))?;
    for _ in 0..MAX_CONTROL_EVENTS {
        let closed = timeout(IO_TIMEOUT, ws.recv_with(|e| matches!(e, Event::Closed(_))))
            .await
            .map_err(|_| "no close frame back")?;
        match closed {
            Ok(true) | Err(wsmachine::adapter::Error::Closed) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(format!("closing: {e}")),
        }
    }
    Err("too many events before the close".into())
}

async fn wait_for_port(port: u16, server: &mut Server) -> Result<(), BoxError> {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = server.0.try_wait()? {
            return Err(format!("the server exited: {status}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("nothing listens on port {port} after 10 s").into())
}

async fn soak(args: Args) -> Result<(), BoxError> {
    let mut server = Server(
        Command::new(&args.server[0])
            .args(&args.server[1..])
            .spawn()?,
    );
    wait_for_port(args.port, &mut server).await?;
    // The probe connection above is gone; let the server settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = server.pid();
    let before = status_kib(pid, "VmRSS");

    let started = Instant::now();
    let mut conns = Vec::with_capacity(args.conns);
    let mut extensions = None;
    while conns.len() < args.conns {
        let batch = CONNECT_BATCH.min(args.conns - conns.len());
        let mut set = JoinSet::new();
        for _ in 0..batch {
            set.spawn(open(args.port));
        }
        while let Some(ws) = set.join_next().await {
            let ws = ws??;
            let negotiated = ws.connection().negotiated().extensions.clone();
            if !negotiated
                .as_deref()
                .is_some_and(|e| e.starts_with("permessage-deflate"))
            {
                return Err(format!("permessage-deflate not negotiated: {negotiated:?}").into());
            }
            extensions.get_or_insert(negotiated);
            conns.push(ws);
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let connected = status_kib(pid, "VmRSS");

    let echoes = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.secs);
    let mut set = JoinSet::new();
    for (i, ws) in conns.drain(..).enumerate() {
        set.spawn(run(i, ws, deadline));
    }
    let phase = Instant::now();
    while let Some(result) = set.join_next().await {
        let (ws, n) = result??;
        echoes.fetch_add(n, Relaxed);
        conns.push(ws);
    }
    let rate = echoes.load(Relaxed) as f64 / phase.elapsed().as_secs_f64();

    tokio::time::sleep(IDLE_WAIT).await;
    let idle = status_kib(pid, "VmRSS");
    let peak = status_kib(pid, "VmHWM");

    let mut set = JoinSet::new();
    for ws in conns.drain(..) {
        set.spawn(close(ws));
    }
    let mut close_errors = 0;
    while let Some(result) = set.join_next().await {
        if let Err(e) = result? {
            close_errors += 1;
            if close_errors <= 3 {
                eprintln!("soak: {e}");
            }
        }
    }
    drop(server);

    let n = args.conns as f64;
    eprintln!(
        "soak {}: {} connections in {connect_secs:.1} s; RSS before {before} KiB, all connected {connected} KiB, \
         idle after traffic {idle} KiB, peak {peak} KiB; {} echoes; {close_errors} close errors",
        args.label,
        args.conns,
        echoes.load(Relaxed)
    );
    println!(
        "| {} | {} | {:.1} KiB | {:.1} KiB | {:.0} MiB | {:.0} | {} |",
        args.label,
        args.conns,
        connected.saturating_sub(before) as f64 / n,
        idle.saturating_sub(before) as f64 / n,
        peak as f64 / 1024.0,
        rate,
        extensions.flatten().unwrap_or_default()
    );
    if close_errors > 0 {
        return Err(format!("{close_errors} connections did not close cleanly").into());
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(soak(args))
}
