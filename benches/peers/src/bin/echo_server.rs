//! An echo server on one library, on a tokio current-thread runtime (or a
//! multi-thread one): every text and binary message comes back as it came.
//!
//! ```text
//! echo_server <wsmachine|tungstenite|fastwebsockets|tokio-websockets|yawc|sockudo-ws> <port> [deflate] [--multi]
//! ```
//!
//! The runtime: by default a current-thread runtime, every connection a
//! task of one `LocalSet`. With `--multi` (or `ECHO_RUNTIME=multi`;
//! `ECHO_RUNTIME=current` is the default) a multi-thread runtime with as many
//! workers as CPUs the process may use (`available_parallelism`, which
//! honours `taskset`), or `ECHO_WORKERS=N`; every connection (and the
//! upgraded WebSocket of fastwebsockets and yawc) is then a `tokio::spawn`ed
//! task. The servers are otherwise the same.
//!
//! Listens on 127.0.0.1. Each library runs with its default configuration,
//! its own server handshake (fastwebsockets and yawc: hyper's upgrade;
//! sockudo-ws: its HTTP/1.1 handshake) and TCP_NODELAY on every accepted
//! socket, as an echo needs.
//!
//! Without `deflate`, no connection is compressed: wsmachine runs with
//! permessage-deflate off (the load client never offers it anyway), the
//! others without compression. With `deflate`, the libraries that have
//! permessage-deflate accept a client's offer with their default settings:
//!
//! - wsmachine: `Config::default()`'s deflate, or the setting of
//!   `WSM_DEFLATE`, as the conformance examples read it:
//!   `dedicated:N` (a dedicated state at zlib memLevel N),
//!   `shared:BITS` (states borrowed from one pool that every connection
//!   shares, BITS of window kept), `shared-no-context` (borrowed, no
//!   context takeover asked); unset or empty: the default. `WSM_DEFLATE` is
//!   read only with `deflate`.
//! - yawc: `DeflateOptions::default()` (level 6, context takeover both
//!   ways). Built without its `zlib` feature, it leaves window bits out of
//!   its answer: a client that asks for `server_max_window_bits` fails the
//!   handshake;
//! - sockudo-ws: `DeflateConfig::default()` (level 6, 15-bit windows,
//!   context takeover both ways, messages under 32 bytes sent as they are).
//!
//! tungstenite, fastwebsockets and tokio-websockets have no
//! permessage-deflate: `deflate` with one of them is an error.

use std::error::Error;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str = "usage: echo_server <wsmachine|tungstenite|fastwebsockets|tokio-websockets|yawc|sockudo-ws> <port> [deflate] [--multi]
  environment: ECHO_RUNTIME=current|multi (default current), ECHO_WORKERS=N (multi: default the CPUs available)";

/// Whether the runtime is a multi-thread one: set once, before it starts.
static MULTI_THREAD: AtomicBool = AtomicBool::new(false);

/// Spawns a task on the runtime in use: a local task of the `LocalSet` on the
/// current-thread runtime, a `tokio::spawn`ed one on the multi-thread runtime.
fn spawn<F>(task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if MULTI_THREAD.load(Ordering::Relaxed) {
        tokio::spawn(task);
    } else {
        tokio::task::spawn_local(task);
    }
}

async fn serve_wsmachine(stream: TcpStream, config: wsmachine::Config) -> Result<(), BoxError> {
    use wsmachine::Event;
    use wsmachine::adapter::tokio::WebSocket;
    let mut ws = WebSocket::accept(stream, config).await?;
    loop {
        // The message is read in place and sent back from there
        // (`send_received`): no copy out of the connection, and with
        // vectored writes none into its transmit buffer either.
        let got = ws
            .recv_with(|event| matches!(event, Event::Text(_) | Event::Binary(_)))
            .await;
        match got {
            Ok(true) => ws.send_received().await?,
            Ok(false) => {}
            // After the Closed event.
            Err(wsmachine::adapter::Error::Closed) => break,
            Err(e) => return Err(e.into()),
        }
    }
    ws.close_transport().await?;
    Ok(())
}

async fn serve_tungstenite(stream: TcpStream) -> Result<(), BoxError> {
    use tokio_tungstenite::tungstenite::Message;
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    // Runs until the stream ends; the close reply goes out on the next poll.
    while let Some(message) = ws.next().await {
        let message = message?;
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            ws.send(message).await?;
        }
    }
    Ok(())
}

async fn serve_fastwebsockets(stream: TcpStream) -> Result<(), BoxError> {
    use fastwebsockets::upgrade::{UpgradeFut, upgrade};
    use fastwebsockets::{FragmentCollector, Frame, OpCode};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    async fn echo(fut: UpgradeFut) -> Result<(), BoxError> {
        let mut ws = FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Text | OpCode::Binary => {
                    ws.write_frame(Frame::new(true, frame.opcode, None, frame.payload))
                        .await?;
                }
                // The close reply was sent by the library.
                OpCode::Close => return Ok(()),
                _ => {}
            }
        }
    }

    let service = service_fn(|mut request| async move {
        let (response, fut) = upgrade(&mut request)?;
        spawn(async move {
            if let Err(e) = echo(fut).await {
                quiet(&*e);
            }
        });
        Ok::<_, fastwebsockets::WebSocketError>(response)
    });
    http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await?;
    Ok(())
}

async fn serve_tokio_websockets(stream: TcpStream) -> Result<(), BoxError> {
    let (_request, mut ws) = tokio_websockets::ServerBuilder::new()
        .accept(stream)
        .await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}

async fn serve_yawc(stream: TcpStream, options: yawc::Options) -> Result<(), BoxError> {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use yawc::frame::OpCode;
    use yawc::{HttpWebSocket, UpgradeFut, WebSocket, WebSocketError};

    async fn echo(fut: UpgradeFut) -> Result<(), BoxError> {
        let mut ws: HttpWebSocket = fut.await?;
        loop {
            match ws.next_frame().await {
                // Whole messages, inflated: they go back as they came.
                Ok(frame) if matches!(frame.opcode(), OpCode::Text | OpCode::Binary) => {
                    ws.send(frame).await?;
                }
                Ok(_) => {}
                // After the Close frame, whose reply the library sent.
                Err(WebSocketError::ConnectionClosed) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    let service = service_fn(move |mut request| {
        let options = options.clone();
        async move {
            let (response, fut) = WebSocket::upgrade_with_options(&mut request, options)?;
            spawn(async move {
                if let Err(e) = echo(fut).await {
                    quiet(&*e);
                }
            });
            Ok::<_, WebSocketError>(response)
        }
    });
    http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await?;
    Ok(())
}

/// sockudo-ws: without permessage-deflate, its HTTP/1.1 server's own accept;
/// with it, the same handshake from the library's parts (its request parser,
/// its negotiation and its response), since only its axum integration
/// negotiates permessage-deflate by itself.
async fn serve_sockudo_ws(mut stream: TcpStream, server: &SockudoServer) -> Result<(), BoxError> {
    use sockudo_ws::deflate::negotiate_server_deflate;
    use sockudo_ws::handshake::{build_response, generate_accept_key, parse_request};
    use sockudo_ws::{CompressedWebSocketStream, Role, WebSocketStream};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let Some(policy) = &server.config().deflate else {
        let (ws, _handshake) = server.accept_raw(stream).await?;
        return echo_sockudo_ws(ws).await;
    };
    let mut buf = bytes::BytesMut::with_capacity(4096);
    let (response, negotiated, consumed) = loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(sockudo_ws::Error::ConnectionClosed.into());
        }
        if let Some((request, consumed)) = parse_request(&buf)? {
            let negotiated = request
                .extensions
                .and_then(|offers| negotiate_server_deflate(offers, policy));
            let extensions = negotiated.as_ref().map(|n| n.to_response_header());
            let accept = generate_accept_key(request.key);
            let response = build_response(&accept, None, extensions.as_deref());
            break (response, negotiated, consumed);
        }
    };
    stream.write_all(&response).await?;
    stream.flush().await?;
    // Frames that came with the request.
    let leftover = (consumed < buf.len()).then(|| buf.split_off(consumed).freeze());
    let config = server.config().clone();
    match negotiated {
        Some(negotiated) => {
            let ws = CompressedWebSocketStream::server_with_leftover(
                stream,
                config,
                negotiated.config,
                leftover,
            );
            echo_sockudo_ws(ws).await
        }
        None => {
            let ws =
                WebSocketStream::from_raw_with_leftover(stream, Role::Server, config, leftover);
            echo_sockudo_ws(ws).await
        }
    }
}

type SockudoServer = sockudo_ws::server::WebSocketServer<sockudo_ws::Http1>;

async fn echo_sockudo_ws<W>(mut ws: W) -> Result<(), BoxError>
where
    W: futures_util::Stream<Item = sockudo_ws::Result<sockudo_ws::Message>>
        + futures_util::Sink<sockudo_ws::Message, Error = sockudo_ws::Error>
        + Unpin,
{
    use sockudo_ws::Message;
    // Runs until the stream ends; the library answers the Close itself.
    while let Some(message) = ws.next().await {
        let message = message?;
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            ws.send(message).await?;
        }
    }
    Ok(())
}

/// Ends of connections that a load run causes are not worth a line.
fn quiet(e: &(dyn Error + 'static)) {
    let text = e.to_string();
    let expected = ["reset", "closed", "Closed", "broken pipe", "EOF", "eof"];
    if !expected.iter().any(|s| text.contains(s)) {
        eprintln!("echo_server: connection ended: {text}");
    }
}

/// What every connection is served with, made once: the connections share
/// it (wsmachine's codec pool among them).
enum Setup {
    Wsmachine(wsmachine::Config),
    Tungstenite,
    Fastwebsockets,
    TokioWebsockets,
    Yawc(yawc::Options),
    SockudoWs(SockudoServer),
}

impl Setup {
    fn new(library: &str, deflate: bool) -> Result<Self, BoxError> {
        let setup = match library {
            "wsmachine" => {
                let mut config = wsmachine::Config::default();
                if !deflate {
                    config.deflate = None;
                } else if let Some(setting) = wsmachine_deflate()? {
                    config.deflate = Some(setting);
                }
                Self::Wsmachine(config)
            }
            "yawc" => {
                let mut options = yawc::Options::default();
                if deflate {
                    options.compression = Some(yawc::DeflateOptions::default());
                }
                Self::Yawc(options)
            }
            "sockudo-ws" => {
                let mut config = sockudo_ws::Config::default();
                if deflate {
                    config.deflate = Some(sockudo_ws::DeflateConfig::default());
                }
                Self::SockudoWs(SockudoServer::new(config))
            }
            _ if deflate => {
                return Err(format!("echo_server: {library} has no permessage-deflate").into());
            }
            "tungstenite" => Self::Tungstenite,
            "fastwebsockets" => Self::Fastwebsockets,
            "tokio-websockets" => Self::TokioWebsockets,
            _ => unreachable!(),
        };
        Ok(setup)
    }
}

/// wsmachine's permessage-deflate setting from `WSM_DEFLATE`, as
/// `examples/support/deflate_setting.rs` reads it, with one pool for every
/// connection; `None` (the default config's) when unset or empty.
fn wsmachine_deflate() -> Result<Option<wsmachine::deflate::DeflateConfig>, BoxError> {
    use wsmachine::deflate::{CodecPool, DeflateConfig};
    let setting = std::env::var("WSM_DEFLATE").unwrap_or_default();
    if setting.is_empty() {
        return Ok(None);
    }
    let bad = || format!("WSM_DEFLATE={setting}: dedicated:N, shared:BITS or shared-no-context");
    let number = |s: &str| s.parse::<u8>().map_err(|_| bad());
    let pool = CodecPool::new();
    let deflate = match setting.split_once(':') {
        Some(("dedicated", n)) => DeflateConfig::dedicated(number(n)?),
        Some(("shared", n)) => DeflateConfig::shared(&pool, number(n)?),
        None if setting == "shared-no-context" => DeflateConfig::shared_without_context(&pool),
        _ => return Err(bad().into()),
    };
    eprintln!("echo_server: permessage-deflate {setting}");
    Ok(Some(deflate))
}

async fn serve(setup: Arc<Setup>, stream: TcpStream) {
    let result = match &*setup {
        Setup::Wsmachine(config) => serve_wsmachine(stream, config.clone()).await,
        Setup::Tungstenite => serve_tungstenite(stream).await,
        Setup::Fastwebsockets => serve_fastwebsockets(stream).await,
        Setup::TokioWebsockets => serve_tokio_websockets(stream).await,
        Setup::Yawc(options) => serve_yawc(stream, options.clone()).await,
        Setup::SockudoWs(server) => serve_sockudo_ws(stream, server).await,
    };
    if let Err(e) = result {
        quiet(&*e);
    }
}

/// The runtime asked for: `--multi` or `ECHO_RUNTIME`.
#[derive(Clone, Copy)]
enum Runtime {
    CurrentThread,
    /// The number of worker threads.
    MultiThread(usize),
}

impl Runtime {
    fn new(multi_flag: bool) -> Result<Self, BoxError> {
        let multi = match std::env::var("ECHO_RUNTIME").unwrap_or_default().as_str() {
            _ if multi_flag => true,
            "" | "current" => false,
            "multi" => true,
            other => return Err(format!("ECHO_RUNTIME={other}: current or multi").into()),
        };
        if !multi {
            return Ok(Self::CurrentThread);
        }
        let workers = match std::env::var("ECHO_WORKERS").unwrap_or_default().as_str() {
            "" => std::thread::available_parallelism()?.get(),
            n => match n.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("ECHO_WORKERS={n}: a number of threads, 1 or more").into()),
            },
        };
        Ok(Self::MultiThread(workers))
    }
}

async fn accept_loop(
    setup: Arc<Setup>,
    library: &str,
    port: u16,
    deflate: bool,
    runtime: Runtime,
) -> Result<(), BoxError> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let compression = if deflate { ", permessage-deflate" } else { "" };
    let threads = match runtime {
        Runtime::CurrentThread => String::new(),
        Runtime::MultiThread(1) => ", multi-thread runtime, 1 worker".to_string(),
        Runtime::MultiThread(n) => format!(", multi-thread runtime, {n} workers"),
    };
    eprintln!("echo_server: {library}{compression}{threads} on 127.0.0.1:{port}");
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        spawn(serve(setup.clone(), stream));
    }
}

fn main() -> Result<(), BoxError> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let multi_flag = match args.iter().position(|a| a == "--multi") {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    let kind = Runtime::new(multi_flag)?;
    let mut args = args.into_iter();
    let library = args.next().ok_or(USAGE)?;
    let library: &'static str = wsmachine_peers::LIBRARIES
        .into_iter()
        .chain(["yawc", "sockudo-ws"])
        .find(|l| *l == library)
        .ok_or(USAGE)?;
    let port: u16 = args.next().ok_or(USAGE)?.parse()?;
    let deflate = match args.next().as_deref() {
        None => false,
        Some("deflate") => true,
        Some(_) => return Err(USAGE.into()),
    };
    if args.next().is_some() {
        return Err(USAGE.into());
    }
    let setup = Arc::new(Setup::new(library, deflate)?);
    if matches!(*setup, Setup::SockudoWs(_)) {
        // Its clock calibrates once (up to 200 ms): before the runtime, as
        // the library asks, rather than in the first connection.
        sockudo_ws::init_clock();
    }

    let serving = accept_loop(setup, library, port, deflate, kind);
    match kind {
        Runtime::CurrentThread => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // Tasks are spawned locally: one thread.
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, serving)
        }
        Runtime::MultiThread(workers) => {
            MULTI_THREAD.store(true, Ordering::Relaxed);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()?;
            runtime.block_on(serving)
        }
    }
}
