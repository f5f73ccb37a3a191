//! A chat room: serves a page at `http://127.0.0.1:8080/` and a WebSocket
//! endpoint on the same port (`/ws`). A browser's first message is its
//! name; every message after it goes to everyone in the room, with join and
//! leave notices and who is online. Whoever joins gets the last 50 messages.
//!
//! ```text
//! cargo run --example chat --features tokio -- 127.0.0.1:8080
//! ```
//!
//! One process holds the room in memory. With `--redis redis://127.0.0.1:6379`
//! the room lives in Redis instead, so that several server processes serve
//! one room: each publishes what its browsers say on a Redis channel and
//! broadcasts what the channel brings to its own browsers; who is online and
//! the recent messages are Redis keys (`wsmachine-chat:online`, a hash of
//! names to connection counts, and `wsmachine-chat:history`). A process that
//! dies without its Ctrl-C leaves its names in the online list.
//!
//! ```text
//! redis-server --port 6379 &
//! cargo run --example chat --features tokio -- 127.0.0.1:8080 --redis redis://127.0.0.1:6379 &
//! cargo run --example chat --features tokio -- 127.0.0.1:8081 --redis redis://127.0.0.1:6379
//! ```
//!
//! A message is framed and compressed once for the whole room
//! ([`PreparedMessage::compressed`]) and broadcast to the connections'
//! writer halves without waiting on any of them ([`broadcast`]): a browser
//! with 64 KiB waiting to be written is skipped, and after 64 skips in a row
//! closed with 1013 (try again later); its page reconnects. Ctrl-C closes
//! every connection with 1001 (going away) and says who left. A browser has
//! 10 s to send its request, and then its name.
//!
//! The request is read once: a plain GET gets the page, an upgrade request
//! goes to a server connection together with the bytes already read, so
//! nothing is lost between the two.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use redis::AsyncCommands;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use wsmachine::adapter::{
    self,
    tokio::{ReadHalf, WebSocket, WriteHalf, broadcast},
};
use wsmachine::deflate::{Compressor, DeflateConfig};
use wsmachine::frame::Status;
use wsmachine::handshake::{self, Accept, HandshakeError, Reject};
use wsmachine::{CloseCode, Config, Connection, Lagging, MessageKind, OwnedEvent, PreparedMessage};

const PAGE: &str = include_str!("index.html");
const MAX_REQUEST: usize = 16 << 10;
/// The longest message a browser may send (a longer one closes its
/// connection with 1009), and the longest name.
const MAX_MESSAGE: u64 = 4 << 10;
const MAX_NAME: usize = 24;
/// Recent messages kept for whoever joins.
const HISTORY: usize = 50;
/// The Redis channel and keys.
const CHANNEL: &str = "wsmachine-chat:room";
const ONLINE: &str = "wsmachine-chat:online";
const RECENT: &str = "wsmachine-chat:history";
/// How much may wait to be written to one browser: past it, a broadcast
/// skips the browser, and after `LAGGING`'s 64 skips in a row closes it.
const SEND_BUFFER: usize = 64 << 10;
/// How long a browser has to send its request, and then its name.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A browser that skipped this many messages in a row is closed.
const LAGGING: Lagging = Lagging::Close {
    after: 64,
    code: CloseCode::TRY_AGAIN_LATER,
};

type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Fallible<()> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:8080".to_string();
    let mut redis_url = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--redis" => redis_url = Some(args.next().ok_or("--redis needs a URL")?),
            _ => addr = arg,
        }
    }
    let listener = TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    let room = Arc::new(Room::new(match &redis_url {
        Some(url) => Backplane::redis(url).await?,
        None => Backplane::Local(Mutex::default()),
    }));
    if let Some(url) = &redis_url {
        // What any process of the room publishes reaches this one's browsers.
        let mut pubsub = redis::Client::open(url.as_str())?
            .get_async_pubsub()
            .await?;
        pubsub.subscribe(CHANNEL).await?;
        let room = room.clone();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                if let Ok(text) = std::str::from_utf8(message.get_payload_bytes()) {
                    room.deliver(text);
                }
            }
            eprintln!("chat: the Redis subscription ended");
            std::process::exit(1);
        });
    }
    let via = redis_url.map_or("one process".into(), |url| format!("Redis at {url}"));
    println!("chat: open http://{local}/ in two browser windows (the room: {via})");

    let mut connections = JoinSet::new();
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors, say: the connections being
                    // served go on, and accepting resumes in a moment.
                    Err(e) => {
                        eprintln!("chat: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let room = room.clone();
                connections.spawn(async move {
                    if let Err(e) = handle(stream, room, local.port()).await {
                        eprintln!("chat: connection ended: {e}");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    // Going away: every browser is told at once (the close queued on each,
    // then all flushed together, bounded), and each reader says who left.
    println!("chat: shutting down");
    let mut writers: Vec<_> = room.peers.lock().unwrap().drain().map(|(_, w)| w).collect();
    for writer in &writers {
        let _ = writer.with_connection(|c| c.close(CloseCode::GOING_AWAY, "server shutting down"));
    }
    let flushes = futures_util::future::join_all(writers.iter_mut().map(|w| w.flush()));
    let _ = tokio::time::timeout(Duration::from_secs(1), flushes).await;
    let _ = tokio::time::timeout(Duration::from_secs(3), connections.join_all()).await;
    Ok(())
}

/// The browsers of this process, and where the room lives.
struct Room {
    peers: Mutex<HashMap<u64, WriteHalf<TcpStream>>>,
    next: AtomicU64,
    backplane: Backplane,
    /// Compresses each event once, without context, for every connection
    /// that agreed permessage-deflate (every browser): the connections send
    /// these bytes as they are (`PreparedMessage::compressed`).
    compressor: Mutex<Compressor>,
}

enum Backplane {
    /// One process: who is online (names and their connection counts) and
    /// the recent messages.
    Local(Mutex<(HashMap<String, usize>, VecDeque<String>)>),
    /// Several processes, one room in Redis.
    Redis(redis::aio::MultiplexedConnection),
}

impl Backplane {
    async fn redis(url: &str) -> Fallible<Self> {
        let client = redis::Client::open(url)?;
        Ok(Self::Redis(
            client.get_multiplexed_async_connection().await?,
        ))
    }
}

impl Room {
    fn new(backplane: Backplane) -> Self {
        Self {
            peers: Mutex::default(),
            next: AtomicU64::new(0),
            backplane,
            // The connections' level, and the 15-bit window a browser's
            // offer agrees.
            compressor: Mutex::new(Compressor::new(DeflateConfig::default().level, 15, true)),
        }
    }

    /// Sends one event to every browser of this process: framed and
    /// compressed once, and never waiting on a slow one.
    fn deliver(&self, event: &str) {
        let compressor = &mut *self.compressor.lock().unwrap();
        let message = PreparedMessage::compressed(MessageKind::Text, event.as_bytes(), compressor)
            .unwrap_or_else(|_| PreparedMessage::text(event));
        let report = broadcast(&message, self.peers.lock().unwrap().values(), LAGGING);
        if report.closed > 0 {
            eprintln!("chat: closed {} lagging connections", report.closed);
        }
    }

    /// Says `event` to the whole room (every process), and keeps it among the
    /// recent messages if `keep`.
    async fn publish(&self, event: String, keep: bool) -> Fallible<()> {
        match &self.backplane {
            Backplane::Local(state) => {
                if keep {
                    let recent = &mut state.lock().unwrap().1;
                    if recent.len() == HISTORY {
                        recent.pop_front();
                    }
                    recent.push_back(event.clone());
                }
                self.deliver(&event);
            }
            Backplane::Redis(redis) => {
                let mut pipe = redis::pipe();
                pipe.atomic();
                if keep {
                    pipe.rpush(RECENT, &event).ignore();
                    pipe.ltrim(RECENT, -(HISTORY as isize), -1).ignore();
                }
                pipe.publish(CHANNEL, &event).ignore();
                pipe.query_async::<()>(&mut redis.clone()).await?;
            }
        }
        Ok(())
    }

    /// Counts one more (or one less) connection for `name`, and says who is
    /// online now, in alphabetical order.
    async fn presence(&self, name: &str, delta: i64) -> Fallible<Vec<String>> {
        let mut online: Vec<String> = match &self.backplane {
            Backplane::Local(state) => {
                let counts = &mut state.lock().unwrap().0;
                let count = counts.entry(name.to_string()).or_default();
                *count = count.saturating_add_signed(delta as isize);
                if *count == 0 {
                    counts.remove(name);
                }
                counts.keys().cloned().collect()
            }
            Backplane::Redis(redis) => {
                let mut redis = redis.clone();
                // A count left at 0 stays in the hash, so that a join and a
                // leave of one name never race over its removal.
                let _: i64 = redis.hincr(ONLINE, name, delta).await?;
                let counts: HashMap<String, i64> = redis.hgetall(ONLINE).await?;
                counts
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(name, _)| name)
                    .collect()
            }
        };
        online.sort();
        Ok(online)
    }

    /// The recent messages, oldest first.
    async fn recent(&self) -> Fallible<Vec<Value>> {
        let recent: Vec<String> = match &self.backplane {
            Backplane::Local(state) => state.lock().unwrap().1.iter().cloned().collect(),
            Backplane::Redis(redis) => redis.clone().lrange(RECENT, 0, -1).await?,
        };
        Ok(recent
            .iter()
            .filter_map(|event| serde_json::from_str(event).ok())
            .collect())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_millis() as u64)
}

/// A name as the room shows it: trimmed, without control characters, at
/// most `MAX_NAME` characters; "guest" if nothing is left.
fn clean_name(raw: &str) -> String {
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    if name.is_empty() {
        "guest".into()
    } else {
        name
    }
}

async fn handle(mut stream: TcpStream, room: Arc<Room>, port: u16) -> Fallible<()> {
    // Read the request head, bounded in size and time.
    let mut head = Vec::with_capacity(1024);
    let reading = tokio::time::timeout(TIMEOUT, async {
        loop {
            let mut chunk = [0; 1024];
            let n = match stream.read(&mut chunk).await {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            if n == 0 {
                break Ok(None);
            }
            head.extend_from_slice(&chunk[..n]);
            match handshake::parse_request(&head, MAX_REQUEST, 64) {
                Ok(Status::Complete(_)) => break Ok(Some(true)),
                Ok(Status::Partial { .. }) => continue,
                // Not an upgrade: plain HTTP.
                Err(HandshakeError::MissingUpgrade | HandshakeError::MissingConnectionUpgrade) => {
                    break Ok(Some(false));
                }
                // Anything else: let the server connection answer it (400, 426, 431 ...).
                Err(_) => break Ok::<_, std::io::Error>(Some(true)),
            }
        }
    });
    let upgrade = match reading.await {
        Ok(Ok(Some(upgrade))) => upgrade,
        Ok(Ok(None)) | Err(_) => return Ok(()),
        Ok(Err(e)) => return Err(e.into()),
    };
    if !upgrade {
        // The page, with or without a query (`/?name=ann` joins as ann).
        let target = head
            .strip_prefix(b"GET ")
            .and_then(|rest| rest.split(|&b| b == b' ').next())
            .unwrap_or_default();
        let path = target.split(|&b| b == b'?').next().unwrap_or_default();
        let page = path == b"/" || path == b"/index.html";
        let (status, body) = if page {
            ("200 OK", PAGE)
        } else {
            ("404 Not Found", "not found\n")
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
        return Ok(());
    }

    stream.set_nodelay(true)?;
    let mut config = Config::default();
    config.max_message_size = MAX_MESSAGE;
    config.max_send_buffer = SEND_BUFFER;
    let mut conn = Connection::server(config);
    conn.handle_read(&head);
    let mut ws = WebSocket::from_connection(stream, conn);
    // The handshake: only pages from this server may connect (RFC 6455 §10.2).
    let allowed = [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ];
    loop {
        match ws.recv().await? {
            OwnedEvent::Request(request) => {
                let origin_ok = request
                    .origin()
                    .is_some_and(|o| allowed.iter().any(|a| a == o));
                if request.path() == "/ws" && origin_ok {
                    ws.connection_mut().accept(Accept::new())?;
                } else {
                    ws.connection_mut()
                        .reject(&Reject::new(403).body(b"forbidden\n"))?;
                    ws.flush().await?;
                    return Ok(());
                }
            }
            OwnedEvent::Open(_) => break,
            OwnedEvent::Closed(_) => {
                ws.flush().await?;
                return Ok(());
            }
            _ => {}
        }
    }
    // The first message is the browser's name, in time.
    let named = tokio::time::timeout(TIMEOUT, async {
        loop {
            match ws.recv().await? {
                OwnedEvent::Text(name) => return Ok::<_, adapter::Error>(Some(clean_name(&name))),
                OwnedEvent::Closed(_) => return Ok(None),
                _ => {}
            }
        }
    });
    let name = match named.await {
        Ok(Ok(Some(name))) => name,
        Ok(Ok(None)) => {
            ws.close_transport().await?;
            return Ok(());
        }
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => {
            ws.close(CloseCode::POLICY_VIOLATION, "no name in time")
                .await?;
            return Ok(());
        }
    };

    // Split halves: this task reads what the browser says; the writer half
    // joins the room, where broadcasts queue on it and write what the
    // stream takes at once. A browser slow to read holds up nobody, and the
    // reader writes the rest (and pongs, and the close echo) when its
    // stream has room.
    let (mut reader, writer) = ws.into_split();
    let id = room.next.fetch_add(1, Ordering::Relaxed);
    let online = room.presence(&name, 1).await?;
    // Whatever ends the session, the browser leaves the room: its writer
    // half out, its count down, and the others told if they were told it
    // joined.
    let mut announced = false;
    let session = session(
        &room,
        &name,
        id,
        &online,
        &mut reader,
        writer,
        &mut announced,
    )
    .await;
    let writer = room.peers.lock().unwrap().remove(&id);
    let online = room.presence(&name, -1).await?;
    if announced {
        let left = json!({"type": "leave", "name": name, "online": online, "at": now_ms()});
        room.publish(left.to_string(), false).await?;
    }
    session?;
    match writer {
        // Whole again, the server ends its transport first (RFC 6455 §7.1.1).
        Some(writer) => reader.reunite(writer)?.close_transport().await?,
        // Taken by the shutdown, which closed the connection.
        None => reader.close_transport().await?,
    }
    Ok(())
}

/// A browser in the room, named and counted: welcomed (who is online, the
/// recent messages), its writer half put in the room, announced, then
/// everything it says published, until its connection closes.
async fn session(
    room: &Room,
    name: &str,
    id: u64,
    online: &[String],
    reader: &mut ReadHalf<TcpStream>,
    mut writer: WriteHalf<TcpStream>,
    announced: &mut bool,
) -> Fallible<()> {
    let welcome = json!({
        "type": "welcome", "name": name, "online": online, "recent": room.recent().await?,
    });
    writer.send_text(&welcome.to_string()).await?;
    room.peers.lock().unwrap().insert(id, writer);
    let joined = json!({"type": "join", "name": name, "online": online, "at": now_ms()});
    room.publish(joined.to_string(), false).await?;
    *announced = true;
    loop {
        match reader.recv().await? {
            OwnedEvent::Text(text) => {
                let said = json!({"type": "message", "name": name, "text": text, "at": now_ms()});
                room.publish(said.to_string(), true).await?;
            }
            OwnedEvent::Closed(_) => return Ok(()),
            _ => {}
        }
    }
}
