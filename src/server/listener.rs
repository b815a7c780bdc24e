//! The gRPC listener's connections: at most `max_connections` open at once
//! (beyond it the listener stops accepting until one closes, so a flood of
//! idle connections cannot use up the process's file descriptors) and at
//! most `max_connections_per_address` from one address (trusted proxies
//! excepted), so that one client cannot take them all; a connection over
//! which no byte has gone either way for `connection_idle_secs` is closed.

use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use ipnet::IpNet;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::tls::Tls;

/// The limits, shared by every connection of the listener.
#[derive(Clone)]
pub struct Limits {
    total: Arc<Semaphore>,
    idle_for: Duration,
    per_address: usize,
    exempt: Arc<Vec<IpNet>>,
    /// Open connections by address key (IPv6 by its /64, as the rate
    /// limiter counts them).
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Limits {
    pub fn new(total: usize, per_address: usize, idle_for: Duration, exempt: Vec<IpNet>) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            idle_for,
            per_address,
            exempt: Arc::new(exempt),
            open: Arc::default(),
        }
    }

    /// A place for one more connection from `ip`, or `None` when that
    /// address already has its share.
    fn admit(&self, ip: IpAddr, permit: OwnedSemaphorePermit) -> Option<Slot> {
        let exempt = self.exempt.iter().any(|net| net.contains(&ip));
        let key = crate::middleware::rate_limit::address_key(Some(ip.to_canonical()));
        if !exempt {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let count = open.entry(key.clone()).or_default();
            if *count >= self.per_address {
                return None;
            }
            *count += 1;
        }
        Some(Slot {
            limits: self.clone(),
            key: (!exempt).then_some(key),
            _permit: permit,
        })
    }
}

/// One open connection's place in the limits, given back when it closes.
pub struct Slot {
    limits: Limits,
    key: Option<String>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(key) = &self.key else {
            return;
        };
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(key);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A served connection holding its [`Slot`], closed once no byte has
    /// gone either way for `idle_for`; tonic sees the inner stream's
    /// connection info.
    pub struct Limited<S> {
        #[pin]
        inner: S,
        slot: Slot,
        idle: Pin<Box<tokio::time::Sleep>>,
        idle_for: Duration,
        last_activity: tokio::time::Instant,
    }
}

impl<S> Limited<S> {
    fn new(inner: S, slot: Slot, idle_for: Duration) -> Self {
        Self {
            inner,
            slot,
            idle: Box::pin(tokio::time::sleep(idle_for)),
            idle_for,
            last_activity: tokio::time::Instant::now(),
        }
    }
}

/// Whether the connection has been idle for `idle_for`. I/O only records
/// its time; the timer is moved on when it fires early, so the hot path
/// never touches the timer wheel.
fn idle_over(
    idle: &mut Pin<Box<tokio::time::Sleep>>,
    last_activity: tokio::time::Instant,
    idle_for: Duration,
    cx: &mut Context<'_>,
) -> bool {
    while std::future::Future::poll(idle.as_mut(), cx).is_ready() {
        let due = last_activity + idle_for;
        if due <= tokio::time::Instant::now() {
            return true;
        }
        idle.as_mut().reset(due);
    }
    false
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle")
}

/// Records I/O that moved bytes.
fn moved(result: &Poll<io::Result<usize>>, last_activity: &mut tokio::time::Instant) {
    if matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
        *last_activity = tokio::time::Instant::now();
    }
}

impl<S: Connected> Connected for Limited<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<S: AsyncRead> AsyncRead for Limited<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        match this.inner.poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                *this.last_activity = tokio::time::Instant::now();
                Poll::Ready(Ok(()))
            }
            Poll::Pending if idle_over(this.idle, *this.last_activity, *this.idle_for, cx) => {
                Poll::Ready(Err(idle_error()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite> AsyncWrite for Limited<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let written = this.inner.poll_write(cx, buf);
        moved(&written, this.last_activity);
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let written = this.inner.poll_write_vectored(cx, bufs);
        moved(&written, this.last_activity);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts within `limits` while the server takes connections (it drops
/// the stream when it stops, after its shutdown signal), and yields each
/// connection once it is ready to serve (after its handshake, with TLS).
/// Handshakes run apart, so one slow client holds up no other.
pub fn incoming<S>(
    listener: TcpListener,
    limits: Limits,
    prepare: impl Fn(TcpStream) -> Pin<Box<dyn std::future::Future<Output = Option<S>> + Send>>
        + Send
        + Sync
        + 'static,
) -> ReceiverStream<io::Result<Limited<S>>>
where
    S: Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(128);
    let prepare = Arc::new(prepare);
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                () = sender.closed() => return,
                permit = limits.total.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let accepted = tokio::select! {
                () = sender.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: wait, never spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = limits.admit(peer.ip(), permit) else {
                tracing::debug!(peer = %peer.ip(), "connection refused: this address has its share");
                continue;
            };
            // Small frames (headers, message, trailers) go out at once: with
            // Nagle's algorithm a reply's last frame could wait for the
            // client's delayed ACK (40 ms).
            let _ = stream.set_nodelay(true);
            let (prepare, sender, idle_for) = (prepare.clone(), sender.clone(), limits.idle_for);
            tokio::spawn(async move {
                if let Some(inner) = prepare(stream).await {
                    let _ = sender.send(Ok(Limited::new(inner, slot, idle_for))).await;
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

/// Plaintext connections, served as accepted.
pub fn plaintext(
    listener: TcpListener,
    limits: Limits,
) -> ReceiverStream<io::Result<Limited<TcpStream>>> {
    incoming(listener, limits, |stream| {
        Box::pin(async move { Some(stream) })
    })
}

/// TLS connections, served once their handshake is done.
pub fn tls(
    listener: TcpListener,
    tls: Tls,
    limits: Limits,
) -> ReceiverStream<io::Result<Limited<tokio_rustls::server::TlsStream<TcpStream>>>> {
    incoming(listener, limits, move |stream| {
        let tls = tls.clone();
        Box::pin(async move { tls.handshake(stream).await })
    })
}
