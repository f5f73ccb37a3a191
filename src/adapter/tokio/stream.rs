//! futures' [`Stream`] and [`Sink`] (feature `futures`) for [`WebSocket`]
//! and its split halves, over the owned [`Message`]: what code written for
//! tokio-tungstenite expects (`StreamExt::split`, `forward`,
//! `SinkExt::send`).
//!
//! The stream yields every message, ping and pong (pings are answered
//! already), then, once the connection ends, a [`Message::Close`] with its
//! close code, or the error it failed with, and then `None`. The sink takes
//! a message at a time: `poll_ready` waits until what was queued before is
//! written (backpressure of one message), `start_send` queues it,
//! `poll_flush` writes it; `poll_close` starts the closing handshake (1000)
//! unless one was started, and flushes; read the stream to its end to
//! complete it.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use wsmachine::adapter::{Message, tokio::WebSocket};
//! use wsmachine::Config;
//! # async fn run(stream: tokio::net::TcpStream) -> Result<(), wsmachine::adapter::Error> {
//! let mut ws = WebSocket::accept(stream, Config::default()).await?;
//! while let Some(message) = ws.next().await {
//!     match message? {
//!         message @ (Message::Text(_) | Message::Binary(_)) => ws.send(message).await?,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::tokio::io::{AsyncRead, AsyncWrite};
use futures_core::Stream;
use futures_sink::Sink;

use super::{ReadHalf, WebSocket, WriteHalf};
use crate::adapter::{Error, Message};
use crate::{CloseCode, Connection};

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let io = &mut self.get_mut().io;
        loop {
            match ready!(io.poll_event(cx.waker(), cx.waker())) {
                Ok(()) => {
                    if let Some(message) = io.driver.event().and_then(Message::from_event) {
                        return Poll::Ready(Some(message.map_err(Error::WebSocket)));
                    }
                }
                Err(Error::Closed) => return Poll::Ready(None),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match ready!(self.poll_event_with(cx, &mut Message::from_event)) {
            Ok(message) => Poll::Ready(Some(message.map_err(Error::WebSocket))),
            Err(Error::Closed) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

/// Starts the closing handshake unless it was started.
fn close(conn: &mut Connection) -> Result<(), crate::Error> {
    if conn.is_open() {
        conn.close(CloseCode::NORMAL, "")?;
    }
    Ok(())
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let io = &mut self.get_mut().io;
        let now = io.now();
        io.driver.tick(now);
        io.poll_flush(cx.waker())
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        Ok(message.send(self.get_mut().io.driver.connection_mut())?)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().io.poll_flush(cx.waker())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let io = &mut self.get_mut().io;
        close(io.driver.connection_mut())?;
        io.poll_flush(cx.waker())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush(cx, true)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.get_mut().queue(|conn| message.send(conn))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush(cx, false)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.queue(close)?;
        this.poll_flush(cx, false)
    }
}
