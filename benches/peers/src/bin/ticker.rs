//! A ticker over loopback: a server sends an update to every subscriber
//! `RATE` times a second, and a client with thousands of subscriptions
//! measures how late each update arrives.
//!
//! ```text
//! ticker server <wsmachine|tokio-tungstenite|sockudo-ws> <port> [RATE (10)]
//! ticker client <port> [CONNECTIONS (10000)] [SECONDS (10)] [WARM SECONDS (3)]
//! ```
//!
//! `benches/peers/run_ticker.sh` runs them on separate CPUs and reads the
//! server's CPU time over the client's measuring window.
//!
//! Each update is a JSON message of about 1 KiB (the corpus of the in-memory
//! broadcast bench) stamped with the wall clock, in nanoseconds, of the time
//! its tick was due (a ticker task kept waiting counts as late); the client reads the stamp on arrival.
//! The delivery latency of an update to a subscriber is therefore everything
//! between the two: the broadcast to every connection before it, the
//! writes, the kernel, and the client's reads.
//!
//! How each server broadcasts, as its users do:
//! - wsmachine: the tokio adapter's `broadcast` of one `PreparedMessage` to
//!   the writer halves of split WebSockets (a lagging one is skipped);
//! - tokio-tungstenite: a `tokio::sync::broadcast` channel of `Message`s,
//!   one task per connection sending each on its sink half;
//! - sockudo-ws: its pub/sub, `publish` to every subscriber's channel, one
//!   task per connection sending each on its writer half.
//!
//! The servers run on a tokio multi-thread runtime with one worker (pin it
//! with `taskset`); the client on another, with wsmachine's client.

use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn Error + Send + Sync>;

#[path = "../../../../examples/support/json_corpus.rs"]
mod json_corpus;

const USAGE: &str = "usage: ticker server <wsmachine|tokio-tungstenite|sockudo-ws> <port> [RATE]\n       ticker client <port> [CONNECTIONS] [SECONDS] [WARM SECONDS]";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The updates, about 1 KiB each: `{"seq":N,"ts":NANOS,"events":[...]}`.
struct Updates {
    bodies: Vec<String>,
    seq: u64,
}

impl Updates {
    fn new() -> Self {
        // The arrays' elements, without the brackets.
        let bodies = json_corpus::updates(32)
            .into_iter()
            .map(|u| u[1..u.len() - 1].to_string())
            .collect();
        Self { bodies, seq: 0 }
    }

    fn next(&mut self, stamp: u64) -> String {
        let body = &self.bodies[self.seq as usize % self.bodies.len()];
        let text = format!(r#"{{"seq":{},"ts":{stamp},"events":[{body}]}}"#, self.seq);
        self.seq += 1;
        text
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

// ----- servers -----

async fn ticks(rate: u32, mut send: impl FnMut(String)) {
    let mut updates = Updates::new();
    let mut interval = tokio::time::interval(Duration::from_secs(1) / rate);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Stamped with the time the tick was due, so that a ticker task
        // kept waiting behind the connections' tasks counts as late.
        let due = interval.tick().await;
        let waited = tokio::time::Instant::now().saturating_duration_since(due);
        send(updates.next(now_ns().saturating_sub(waited.as_nanos() as u64)));
    }
}

async fn serve_wsmachine(listener: TcpListener, rate: u32) -> Result<(), BoxError> {
    use wsmachine::adapter::tokio::{WebSocket, WriteHalf, broadcast};
    use wsmachine::{Config, Lagging, PreparedMessage};
    let room: Arc<Mutex<Vec<WriteHalf<TcpStream>>>> = Arc::default();
    let skipped = Arc::new(AtomicU64::new(0));
    {
        let room = room.clone();
        let skipped = skipped.clone();
        tokio::spawn(ticks(rate, move |text| {
            let update = PreparedMessage::text(&text);
            let report = broadcast(&update, room.lock().unwrap().iter(), Lagging::Skip);
            skipped.fetch_add(report.skipped as u64, Ordering::Relaxed);
        }));
    }
    let mut config = Config::default();
    config.deflate = None;
    // As the peers' servers run: no pings of its own.
    config.keepalive_interval = None;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let room = room.clone();
        let config = config.clone();
        tokio::spawn(async move {
            let Ok(ws) = WebSocket::accept(stream, config).await else {
                return;
            };
            let (mut reader, writer) = ws.into_split();
            room.lock().unwrap().push(writer);
            // The reader answers pings and the close, and writes what a
            // broadcast left queued.
            while reader.recv().await.is_ok() {}
        });
    }
}

async fn serve_tokio_tungstenite(listener: TcpListener, rate: u32) -> Result<(), BoxError> {
    use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
    let (tx, _) = tokio::sync::broadcast::channel::<Message>(64);
    {
        let tx = tx.clone();
        tokio::spawn(ticks(rate, move |text| {
            let _ = tx.send(Message::Text(Utf8Bytes::from(text)));
        }));
    }
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(message) => {
                            if sink.send(message).await.is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return,
                    }
                }
            });
            while let Some(Ok(_)) = stream.next().await {}
        });
    }
}

async fn serve_sockudo_ws(listener: TcpListener, rate: u32) -> Result<(), BoxError> {
    use sockudo_ws::{Message, PubSub};
    const TOPIC: &str = "ticker";
    let pubsub = Arc::new(PubSub::new());
    {
        let pubsub = pubsub.clone();
        tokio::spawn(ticks(rate, move |text| {
            pubsub.publish(TOPIC, Message::text(text));
        }));
    }
    let server = Arc::new(
        sockudo_ws::server::WebSocketServer::<sockudo_ws::Http1>::new(sockudo_ws::Config::default()),
    );
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let pubsub = pubsub.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let Ok((ws, _)) = server.accept_raw(stream).await else {
                return;
            };
            let (mut reader, mut writer) = ws.split();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let id = pubsub.create_subscriber(tx);
            pubsub.subscribe(id, TOPIC);
            tokio::spawn(async move {
                while let Some(message) = rx.recv().await {
                    if writer.send(message).await.is_err() {
                        return;
                    }
                }
            });
            while let Some(Ok(_)) = reader.next().await {}
            pubsub.remove_subscriber(id);
        });
    }
}

fn server(mut args: impl Iterator<Item = String>) -> Result<(), BoxError> {
    let library = args.next().ok_or(USAGE)?;
    let port: u16 = args.next().ok_or(USAGE)?.parse()?;
    let rate: u32 = args.next().map_or(Ok(10), |r| r.parse())?;
    if library == "sockudo-ws" {
        // Its clock calibrates once, before the runtime, as it asks.
        sockudo_ws::init_clock();
    }
    runtime().block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("ticker: {library} on 127.0.0.1:{port}, {rate} updates/s");
        match library.as_str() {
            "wsmachine" => serve_wsmachine(listener, rate).await,
            "tokio-tungstenite" => serve_tokio_tungstenite(listener, rate).await,
            "sockudo-ws" => serve_sockudo_ws(listener, rate).await,
            _ => Err(USAGE.into()),
        }
    })
}

// ----- the client -----

/// The stamp of an update, `"ts":NANOS`.
fn stamp(text: &str) -> Option<u64> {
    let at = text.find(r#""ts":"#)? + 5;
    let digits = text[at..].split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

fn client(mut args: impl Iterator<Item = String>) -> Result<(), BoxError> {
    use wsmachine::adapter::tokio::WebSocket;
    use wsmachine::handshake::ClientRequest;
    use wsmachine::{Config, Event};
    let port: u16 = args.next().ok_or(USAGE)?.parse()?;
    let conns: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let secs: u64 = args.next().map_or(Ok(10), |n| n.parse())?;
    let warm: u64 = args.next().map_or(Ok(3), |n| n.parse())?;
    runtime().block_on(async move {
        let measuring = Arc::new(AtomicBool::new(false));
        let latencies: Arc<Mutex<Vec<u32>>> = Arc::default();
        let received = Arc::new(AtomicU64::new(0));
        let connected = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(256));
        let request = ClientRequest::new(&format!("ws://127.0.0.1:{port}/"))?;
        let mut config = Config::default();
        config.deflate = None;
        for _ in 0..conns {
            let (measuring, latencies, received, connected, ended, gate) = (
                measuring.clone(),
                latencies.clone(),
                received.clone(),
                connected.clone(),
                ended.clone(),
                gate.clone(),
            );
            let (request, config) = (request.clone(), config.clone());
            tokio::spawn(async move {
                let ws = async {
                    let _permit = gate.acquire().await.ok()?;
                    let stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
                    stream.set_nodelay(true).ok()?;
                    WebSocket::connect(stream, &request, config).await.ok()
                };
                let Some(mut ws) = ws.await else {
                    ended.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                connected.fetch_add(1, Ordering::Relaxed);
                loop {
                    let at = ws
                        .recv_with(|event| match event {
                            Event::Text(text) => stamp(text),
                            _ => None,
                        })
                        .await;
                    match at {
                        Ok(Some(at)) if measuring.load(Ordering::Relaxed) => {
                            let late = now_ns().saturating_sub(at) / 1_000;
                            latencies.lock().unwrap().push(late.min(u64::from(u32::MAX)) as u32);
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                ended.fetch_add(1, Ordering::Relaxed);
            });
        }
        // Every connection up (or failed), bounded.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while connected.load(Ordering::Relaxed) + ended.load(Ordering::Relaxed) < conns as u64 {
            if tokio::time::Instant::now() > deadline {
                return Err("connecting took over 120 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let up = connected.load(Ordering::Relaxed);
        println!("connected {up} of {conns}");
        tokio::time::sleep(Duration::from_secs(warm)).await;
        measuring.store(true, Ordering::Relaxed);
        println!("start");
        tokio::time::sleep(Duration::from_secs(secs)).await;
        measuring.store(false, Ordering::Relaxed);
        println!("end");
        let mut late = std::mem::take(&mut *latencies.lock().unwrap());
        late.sort_unstable();
        let pick = |q: f64| {
            late.get(((late.len() as f64 * q) as usize).min(late.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        println!(
            "result connected={up} ended={} received={} per_second={:.0} p50_us={} p99_us={} p999_us={} max_us={}",
            ended.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed) as f64 / secs as f64,
            pick(0.50),
            pick(0.99),
            pick(0.999),
            late.last().copied().unwrap_or(0),
        );
        Ok(())
    })
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("server") => server(args),
        Some("client") => client(args),
        _ => Err(USAGE.into()),
    }
}
