//! Connections that go silent are closed.
//!
//! Every accepted connection is wrapped in [`Deadline`]: once it has neither
//! read nor written a byte for the timeout, its next read fails with `TimedOut`
//! and hyper drops the connection. That closes a connection that never sends a
//! request head (or stops half-way through one), and an idle keep-alive, without
//! touching a busy one. (poem's own `idle_timeout` only asks hyper for a graceful
//! shutdown, which waits for the request head that never comes.)
//!
//! An upgraded WebSocket runs over the same wrapper, so the live cart pings its
//! client every half timeout: the write keeps a quiet socket open.

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// An acceptor whose connections close after `timeout` of silence.
pub struct SilenceTimeout<A> {
    inner: A,
    timeout: Duration,
}

impl<A> SilenceTimeout<A> {
    /// Wraps `inner`'s connections.
    pub fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<A: Acceptor> Acceptor for SilenceTimeout<A> {
    type Io = Deadline<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((Deadline::new(io, self.timeout), local, remote, scheme))
    }
}

/// An IO stream whose reads fail once it has been silent for the timeout.
///
/// Activity only notes the time; the timer is moved when it fires early (at most
/// once per timeout), not on every read and write: resetting a tokio timer takes
/// the timer wheel's lock, which every request would otherwise pay twice.
pub struct Deadline<Io> {
    inner: Io,
    timeout: Duration,
    last_activity: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl<Io> Deadline<Io> {
    fn new(inner: Io, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            last_activity: Instant::now(),
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn activity(&mut self) {
        self.last_activity = Instant::now();
    }

    /// Ready once the stream has been silent for the timeout.
    fn poll_silence(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.sleep.as_mut().poll(cx).is_ready() {
            let deadline = self.last_activity + self.timeout;
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            self.sleep.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Deadline<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.activity();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.poll_silence(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection was silent too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Deadline<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn silence_fails_the_read_and_activity_postpones_it() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = Deadline::new(server, Duration::from_secs(2));
        let mut client = client;
        // Bytes within the timeout keep it open.
        client.write_all(b"GET").await.unwrap();
        let mut buffer = [0u8; 8];
        assert_eq!(server.read(&mut buffer).await.unwrap(), 3);
        tokio::time::advance(Duration::from_millis(1500)).await;
        client.write_all(b" /").await.unwrap();
        assert_eq!(server.read(&mut buffer).await.unwrap(), 2);
        // A write of ours counts as activity too (a ping on a quiet socket).
        tokio::time::advance(Duration::from_millis(1500)).await;
        server.write_all(b"ping").await.unwrap();
        tokio::time::advance(Duration::from_millis(1500)).await;
        // Then silence: the read fails once 2 s pass without a byte.
        let error = server.read(&mut buffer).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
