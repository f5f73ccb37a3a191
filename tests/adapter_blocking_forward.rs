//! The blocking adapter's `send_received` and `forward_received`: a received
//! message sent back, or on through another WebSocket, from where it was
//! received: intact whatever its size, kind and compression on either side,
//! and from 8 KiB on without a copy into the sending connection (its payload
//! reaches the stream as a slice of its own). Every test is bounded in time.
#![cfg(feature = "blocking")]

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use wsmachine::adapter::Error;
use wsmachine::adapter::blocking::{ReadTimeout, WebSocket};
use wsmachine::handshake::ClientRequest;
mod common;
use common::{
    COPIED_SIZES, EDGE_SIZES, OWN_SLICE_SIZES, assert_written_from_where_they_lie, text_and_binary,
};
use wsmachine::{CloseCode, Config, Event, OwnedEvent, UsageError};

#[path = "common/bounded.rs"]
mod bounded;
use bounded::bounded;

fn uncompressed() -> Config {
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    {
        config.deflate = None;
    }
    config
}

/// Slice lengths of every vectored write, one list per write.
type Writes = Arc<Mutex<Vec<Vec<usize>>>>;

/// A stream that records the length of every slice of every vectored write
/// it is given (and writes them out in order, as a socket does).
struct Recording {
    inner: TcpStream,
    writes: Writes,
}

impl Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let lens = bufs.iter().map(|b| b.len()).filter(|&n| n > 0).collect();
        self.writes.lock().unwrap().push(lens);
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl ReadTimeout for Recording {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }
}

fn client(addr: &str, config: Config) -> WebSocket<TcpStream> {
    let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let stream = TcpStream::connect(addr).unwrap();
    WebSocket::connect(stream, &request, config).unwrap()
}

fn accept(listener: &TcpListener, config: Config, writes: &Writes) -> WebSocket<Recording> {
    let (inner, _) = listener.accept().unwrap();
    let stream = Recording {
        inner,
        writes: writes.clone(),
    };
    WebSocket::accept(stream, config).unwrap()
}

/// `Some(true)` for a message (held for sending on), `None` once closed.
fn message(event: Event<'_>) -> Option<bool> {
    match event {
        Event::Text(_) | Event::Binary(_) => Some(true),
        Event::Closed(_) => None,
        _ => Some(false),
    }
}

fn send(ws: &mut WebSocket<TcpStream>, message: &OwnedEvent) {
    match message {
        OwnedEvent::Text(t) => ws.send_text(t).unwrap(),
        OwnedEvent::Binary(b) => ws.send_binary(b).unwrap(),
        _ => unreachable!(),
    }
}

fn check(got: &OwnedEvent, sent: &OwnedEvent) {
    let len = match sent {
        OwnedEvent::Text(t) => t.len(),
        OwnedEvent::Binary(b) => b.len(),
        _ => 0,
    };
    assert!(got == sent, "a message of {len} bytes changed");
}

/// An echo server's connection answering with `send_received`; the client
/// checks every echo. Returns the server's vectored writes.
fn echo(server_config: Config, client_config: Config, sent: &[OwnedEvent]) -> Vec<Vec<usize>> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let writes = Writes::default();
    let recorded = writes.clone();
    let server = thread::spawn(move || {
        let mut ws = accept(&listener, server_config, &writes);
        while let Some(held) = ws.recv_with(message)? {
            if held {
                ws.send_received()?;
            }
        }
        ws.close_transport()
    });
    let mut ws = client(&addr, client_config);
    for m in sent {
        send(&mut ws, m);
        check(&ws.recv().unwrap(), m);
    }
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(ws.recv().unwrap(), OwnedEvent::Closed(i) if i.is_clean()));
    server.join().unwrap().unwrap();
    recorded.lock().unwrap().clone()
}

/// A relay: the first client's messages go to the second through
/// `forward_received`, until the first closes. Returns the second
/// connection's vectored writes.
fn relay(from: Config, to: Config, clients: Config, sent: &[OwnedEvent]) -> Vec<Vec<usize>> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let writes = Writes::default();
    let recorded = writes.clone();
    let server = thread::spawn(move || {
        let mut from = accept(&listener, from, &Writes::default());
        let mut to = accept(&listener, to, &writes);
        while let Some(held) = from.recv_with(message)? {
            if held {
                from.forward_received(&mut to)?;
            }
        }
        from.close_transport()?;
        to.close(CloseCode::NORMAL, "relay done")?;
        while !matches!(to.recv()?, OwnedEvent::Closed(_)) {}
        Ok::<_, Error>(())
    });
    let mut sender = client(&addr, clients.clone());
    let mut receiver = client(&addr, clients);
    for m in sent {
        send(&mut sender, m);
        check(&receiver.recv().unwrap(), m);
    }
    sender.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(sender.recv().unwrap(), OwnedEvent::Closed(i) if i.is_clean()));
    assert!(matches!(receiver.recv().unwrap(), OwnedEvent::Closed(i) if i.is_clean()));
    server.join().unwrap().unwrap();
    recorded.lock().unwrap().clone()
}

#[test]
fn an_echo_of_any_size_arrives_intact() {
    bounded(|| {
        echo(
            uncompressed(),
            uncompressed(),
            &text_and_binary(&EDGE_SIZES),
        );
    });
}

#[test]
fn a_large_echo_is_written_from_the_receive_buffer() {
    bounded(|| {
        let sizes = [&COPIED_SIZES[..], &OWN_SLICE_SIZES[..]].concat();
        let writes = echo(uncompressed(), uncompressed(), &text_and_binary(&sizes));
        assert_written_from_where_they_lie(&writes, &OWN_SLICE_SIZES, &COPIED_SIZES);
    });
}

#[test]
fn a_relayed_message_of_any_size_arrives_intact() {
    bounded(|| {
        relay(
            uncompressed(),
            uncompressed(),
            uncompressed(),
            &text_and_binary(&EDGE_SIZES),
        );
    });
}

#[test]
fn a_large_relayed_message_reaches_the_other_stream_without_a_copy() {
    bounded(|| {
        let sizes = [&COPIED_SIZES[..], &OWN_SLICE_SIZES[..]].concat();
        let writes = relay(
            uncompressed(),
            uncompressed(),
            uncompressed(),
            &text_and_binary(&sizes),
        );
        assert_written_from_where_they_lie(&writes, &OWN_SLICE_SIZES, &COPIED_SIZES);
    });
}

#[cfg(feature = "deflate")]
#[test]
fn compression_on_either_side_is_honoured() {
    bounded(|| {
        // Received compressed (inflated on the way in), sent on plain; and
        // received plain, sent on compressed.
        for (from, to) in [
            (Config::default(), uncompressed()),
            (uncompressed(), Config::default()),
        ] {
            relay(from, to, Config::default(), &text_and_binary(&EDGE_SIZES));
        }
        // An echo compressed both ways.
        echo(
            Config::default(),
            Config::default(),
            &text_and_binary(&EDGE_SIZES),
        );
    });
}

#[test]
fn nothing_received_is_a_usage_error() {
    bounded(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = thread::spawn(move || {
            let writes = Writes::default();
            let mut from = accept(&listener, uncompressed(), &writes);
            let mut to = accept(&listener, uncompressed(), &writes);
            // The handshake was the last event: no message is held.
            let usage = |r: &Result<(), Error>| {
                matches!(
                    r,
                    Err(Error::WebSocket(wsmachine::Error::Usage(
                        UsageError::NoReceivedMessage
                    )))
                )
            };
            let forwarded = from.forward_received(&mut to);
            assert!(usage(&forwarded), "{forwarded:?}");
            let echoed = from.send_received();
            assert!(usage(&echoed), "{echoed:?}");
            assert_eq!(to.connection().pending_transmit(), 0);
            assert_eq!(from.connection().pending_transmit(), 0);
        });
        let _a = client(&addr, uncompressed());
        let _b = client(&addr, uncompressed());
        server.join().unwrap();
    });
}
