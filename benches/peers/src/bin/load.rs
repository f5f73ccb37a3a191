//! A closed-loop echo load, neutral towards the servers: a raw client that
//! upgrades by hand (no extension offered), then keeps exactly one message in
//! flight per connection: it writes a pre-encoded masked frame, reads the
//! whole echoed frame back (checked byte for byte), and repeats.
//!
//! ```text
//! load --port P [--conns N] [--size BYTES] [--secs S] [--warmup-ms MS] [--max-msgs M]
//! ```
//!
//! Runs on a tokio current-thread runtime. Prints one line:
//! `msgs=… secs=… rate=… p50_us=… p99_us=…` (rate in messages per second,
//! latencies from the write of a frame to the last byte of its echo).

use std::cell::Cell;
use std::error::Error;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use wsmachine_peers::wire::{self, Keys, OP_BINARY, OP_CLOSE, OP_TEXT};

type BoxError = Box<dyn Error>;

struct Args {
    port: u16,
    conns: usize,
    size: usize,
    secs: f64,
    warmup: Duration,
    max_msgs: u64,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        port: 0,
        conns: 1,
        size: 16,
        secs: 5.0,
        warmup: Duration::from_millis(300),
        max_msgs: 50_000_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} takes a value"));
        match arg.as_str() {
            "--port" => args.port = value()?.parse()?,
            "--conns" => args.conns = value()?.parse()?,
            "--size" => args.size = value()?.parse()?,
            "--secs" => args.secs = value()?.parse()?,
            "--warmup-ms" => args.warmup = Duration::from_millis(value()?.parse()?),
            "--max-msgs" => args.max_msgs = value()?.parse()?,
            "-h" | "--help" => {
                println!(
                    "load --port P [--conns N] [--size BYTES] [--secs S] [--warmup-ms MS] [--max-msgs M]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if args.port == 0 || args.conns == 0 || args.secs <= 0.0 {
        return Err("--port, a positive --conns and --secs are needed".into());
    }
    Ok(args)
}

/// Connects and upgrades by hand; the server must answer 101 with the right
/// accept key, and send nothing more.
async fn connect(port: u16) -> Result<TcpStream, BoxError> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    stream
        .write_all(&wire::upgrade_request(&format!("127.0.0.1:{port}")))
        .await?;
    let mut head = Vec::new();
    let mut byte = [0; 1];
    // Byte by byte: nothing past the head is read (the server sends nothing more).
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Err("the server closed during the handshake".into());
        }
        head.push(byte[0]);
        if head.len() > 8192 {
            return Err("handshake response too long".into());
        }
    }
    wire::check_upgrade_response(&head)?;
    Ok(stream)
}

/// What one connection measured.
struct Measured {
    latencies_ns: Vec<u64>,
    last_end: Option<Instant>,
}

struct Plan {
    frame: Vec<u8>,
    echo: Vec<u8>,
    measure_from: Instant,
    deadline: Instant,
    max_msgs: u64,
    counted: Cell<u64>,
}

async fn drive(mut stream: TcpStream, plan: Rc<Plan>) -> Result<Measured, BoxError> {
    let mut buf = vec![0; plan.echo.len()];
    let mut measured = Measured {
        latencies_ns: Vec::with_capacity(1 << 16),
        last_end: None,
    };
    loop {
        let start = Instant::now();
        if start >= plan.deadline || plan.counted.get() >= plan.max_msgs {
            break;
        }
        stream.write_all(&plan.frame).await?;
        stream.read_exact(&mut buf).await?;
        let end = Instant::now();
        if buf != plan.echo {
            return Err("the echo differs from the message sent".into());
        }
        if start >= plan.measure_from && end <= plan.deadline {
            plan.counted.set(plan.counted.get() + 1);
            measured.latencies_ns.push((end - start).as_nanos() as u64);
            measured.last_end = Some(end);
        }
    }
    // A clean close: a masked close frame (1000), then wait briefly for the
    // server's close and end of stream.
    let mut close = Vec::new();
    wire::frame(
        &mut close,
        OP_CLOSE,
        &1000u16.to_be_bytes(),
        Some([1, 2, 3, 4]),
    );
    stream.write_all(&close).await?;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut sink = [0; 256];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    Ok(measured)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

async fn run(args: Args) -> Result<(), BoxError> {
    let opcode = if args.size < 1024 { OP_TEXT } else { OP_BINARY };
    let payload: Vec<u8> = (0..args.size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut frame = Vec::new();
    wire::frame(&mut frame, opcode, &payload, Some(Keys::new(3).next_key()));
    let mut echo = Vec::new();
    wire::frame(&mut echo, opcode, &payload, None);

    let mut streams = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        streams.push(connect(args.port).await?);
    }
    let measure_from = Instant::now() + args.warmup;
    let plan = Rc::new(Plan {
        frame,
        echo,
        measure_from,
        deadline: measure_from + Duration::from_secs_f64(args.secs),
        max_msgs: args.max_msgs,
        counted: Cell::new(0),
    });
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::task::spawn_local(drive(s, plan.clone())))
        .collect();
    let mut latencies = Vec::new();
    let mut last_end = None;
    for task in tasks {
        let measured = task.await.map_err(|e| e.to_string())??;
        latencies.extend(measured.latencies_ns);
        last_end = last_end.max(measured.last_end);
    }
    let last_end = last_end.ok_or("no message was echoed in the measured window")?;
    latencies.sort_unstable();
    let secs = (last_end - measure_from).as_secs_f64();
    let msgs = latencies.len();
    println!(
        "msgs={msgs} secs={secs:.3} rate={:.0} p50_us={:.1} p99_us={:.1}",
        msgs as f64 / secs,
        percentile(&latencies, 50.0) / 1e3,
        percentile(&latencies, 99.0) / 1e3,
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio::task::LocalSet::new().block_on(&runtime, run(args))
}
