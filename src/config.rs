//! Limits, timeouts and behaviour switches, each with a safe default.

use core::time::Duration;

/// How data messages are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MessageMode {
    /// Whole messages: fragments are assembled and a message is delivered once,
    /// as [`Event::Text`](crate::Event::Text) or [`Event::Binary`](crate::Event::Binary).
    /// Memory grows with the message, up to [`Config::max_message_size`].
    #[default]
    Whole,
    /// Streaming: payload is delivered as it arrives, as
    /// [`Event::Fragment`](crate::Event::Fragment), with memory bounded by one read,
    /// whatever the message size.
    Streaming,
}

/// Connection configuration. Every limit has a safe default; `u64::MAX`
/// disables a size limit.
///
/// ```
/// use wsmachine::{Config, MessageMode};
/// let mut config = Config::default();
/// config.max_message_size = 1 << 20;
/// config.mode = MessageMode::Streaming;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest payload of one received frame, checked on the header before any
    /// payload is buffered (RFC 6455 §10.4). Over it: close 1009. Default 16 MiB.
    /// A compressed frame (permessage-deflate) may take up to
    /// [`max_compressed_len`](crate::deflate::max_compressed_len) of it on the
    /// wire: a compressor can make data larger, and the data is what is limited.
    pub max_frame_size: u64,
    /// Largest received message (sum of its fragments), checked on each frame
    /// header before its payload is buffered. Over it: close 1009. Default 64 MiB.
    /// It applies in streaming mode too; set `u64::MAX` there to pass huge messages.
    /// A compressed message's limit is on what it inflates to, checked while
    /// inflating, whatever its size on the wire.
    pub max_message_size: u64,
    /// Whole messages or streaming fragments.
    pub mode: MessageMode,
    /// Answer every ping with a pong automatically (RFC 6455 §5.5.2). Default on.
    /// Off: the application must call [`Connection::send_pong`](crate::Connection::send_pong).
    pub auto_pong: bool,
    /// The least free space [`Connection::recv_buffer`](crate::Connection::recv_buffer)
    /// hands out. Default 16 KiB.
    pub read_buffer_size: usize,
    /// The size of the first read into an empty connection (new, or idle),
    /// so that a connection waiting for input holds no more; and, with a zero
    /// [`buffer_release_delay`](Self::buffer_release_delay), the capacity a
    /// buffer keeps as it empties. Default 512 B.
    pub retain_buffer_size: usize,
    /// How long the connection must go without traffic before its empty
    /// buffers (receive, message assembly, transmit) are freed: a deadline of
    /// [`Connection::poll_timeout`](crate::Connection::poll_timeout), so it
    /// needs the clock. An idle connection then holds no buffer at all.
    /// Traffic within it reuses them: a stream of large messages or a
    /// request/response exchange allocates nothing per message.
    /// `Duration::ZERO` frees a buffer that grew past
    /// [`retain_buffer_size`](Self::retain_buffer_size) as soon as it
    /// empties: the least memory, an allocation per message. Default 1 s.
    pub buffer_release_delay: Duration,
    /// The high-water mark of the transmit buffer. A message, fragment, ping
    /// or pong that would take the unsent bytes past it is refused with
    /// [`UsageError::SendBufferFull`](crate::UsageError::SendBufferFull)
    /// (write out [`poll_transmit`](crate::Connection::poll_transmit), then
    /// retry); one message is always taken into an empty buffer, whatever its
    /// size. What the connection queues on its own (the pong for a ping, the
    /// echo of a close, a keepalive ping) and [`close`](crate::Connection::close)
    /// are never refused, and past 4 KiB unsent a newer ping's pong replaces an
    /// unsent one (RFC 6455 §5.5.3), so a peer that stops reading cannot grow
    /// the buffer past the mark, one message and 4 KiB. The adapters wait for
    /// the socket to drain instead. Default 4 MiB.
    pub max_send_buffer: usize,
    /// Largest opening handshake header block, request or response. Over it a
    /// server answers 431. Default 16 KiB.
    pub max_handshake_size: usize,
    /// Most header fields in the opening handshake. Over it a server answers
    /// 431. Default 64.
    pub max_headers: usize,
    /// permessage-deflate (RFC 7692): a client offers it, a server accepts an
    /// offer, as configured here; `None` turns it off. Default on. With it,
    /// [`max_message_size`](Self::max_message_size) bounds the *inflated*
    /// size, checked while inflating.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::deflate::DeflateConfig>,
    /// Keepalive: after this long without receiving anything, a ping is sent
    /// (RFC 6455 §5.5.2). `None` turns keepalive off. Default 30 s.
    pub keepalive_interval: Option<Duration>,
    /// Keepalive: how long after its ping the peer has to show it is alive
    /// (see [`keepalive_needs_pong`](Self::keepalive_needs_pong)) before the
    /// connection fails as unresponsive, with a close frame of 1001 queued.
    /// `None`: pings are sent but never time out. Default 20 s.
    pub keepalive_timeout: Option<Duration>,
    /// Keepalive: only the pong answering the ping proves the peer alive.
    /// Default off: any bytes received do (a peer busy sending a large message
    /// may queue its pong behind it).
    pub keepalive_needs_pong: bool,
    /// After we send a close frame, how long the peer has to answer with its
    /// own before the connection is closed without it (1006); for a client,
    /// also how long it waits for the server to close the transport after the
    /// closing handshake (RFC 6455 §7.1.1). `None`: wait forever. Default 10 s.
    pub close_timeout: Option<Duration>,
    /// How long the opening handshake may take from the first
    /// [`handle_timeout`](crate::Connection::handle_timeout): a server that has
    /// not received a whole request by then answers 408 (if part of one came)
    /// and closes, which defends against slowloris. `None`: no limit.
    /// Default 10 s.
    pub handshake_timeout: Option<Duration>,
    /// Close with 1001 after this long without a data message in either
    /// direction (control frames do not count). Default `None` (off).
    pub idle_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            mode: MessageMode::Whole,
            auto_pong: true,
            read_buffer_size: 16 << 10,
            retain_buffer_size: 512,
            buffer_release_delay: Duration::from_secs(1),
            max_send_buffer: 4 << 20,
            max_handshake_size: 16 << 10,
            max_headers: 64,
            #[cfg(feature = "deflate")]
            deflate: Some(crate::deflate::DeflateConfig::default()),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Some(Duration::from_secs(20)),
            keepalive_needs_pong: false,
            close_timeout: Some(Duration::from_secs(10)),
            handshake_timeout: Some(Duration::from_secs(10)),
            idle_timeout: None,
        }
    }
}
