//! TLS termination with rustls (aws-lc-rs provider), and the connection loop
//! (TLS or plain HTTP) with its timeouts and connection limits.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The TLS client certificate a connection presented (verified against the CA).
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub Vec<u8>);

/// Builds a TLS acceptor from a PEM chain and a PEM PKCS#8 key. Client
/// certificates issued by the CA (`client_roots`) are requested but optional;
/// mapped ones authenticate their principal.
pub fn acceptor(
    chain_pem: &str,
    key_pem: &str,
    client_roots: &[Vec<u8>],
) -> anyhow::Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> =
        lockbox_codec::pem::decode_all(chain_pem, "CERTIFICATE")?
            .into_iter()
            .map(CertificateDer::from)
            .collect();
    let key_der = lockbox_codec::pem::decode_all(key_pem, "PRIVATE KEY")?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("TLS key file holds no PRIVATE KEY"))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for r in client_roots {
        roots.add(CertificateDer::from(r.clone()))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Wraps `app` so every request carries the connection's verified client
/// certificate thumbprint in [`crate::auth::CLIENT_CERT_HEADER`], and never a
/// value the client supplied itself.
pub fn with_client_certificate(app: axum::Router, thumbprint: Option<String>) -> axum::Router {
    let inner = app.map_request(move |mut req: axum::extract::Request| {
        req.headers_mut().remove(crate::auth::CLIENT_CERT_HEADER);
        if let Some(v) = thumbprint
            .as_deref()
            .and_then(|t| axum::http::HeaderValue::from_str(t).ok())
        {
            req.headers_mut().insert(crate::auth::CLIENT_CERT_HEADER, v);
        }
        req
    });
    axum::Router::new().fallback_service(inner)
}

/// Connection limits and timeouts of the service (from `[server.limits]`).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Time allowed for the TLS handshake.
    pub handshake: Duration,
    /// Time allowed to receive a request's headers (HTTP/1.1), also while a
    /// keep-alive connection waits for its next request.
    pub header: Duration,
    /// Time allowed to receive a request body, from the request's arrival.
    pub body: Duration,
    /// Time a connection may stay without a request in progress.
    pub idle: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections served at once from one source (an IPv4 address or an
    /// IPv6 /64); a further connection from that source is closed at once.
    pub max_connections_per_address: usize,
    /// Time a request may stay in progress without its response making write
    /// progress (from the request's arrival, then from the last chunk of the
    /// response the connection accepted).
    pub response: Duration,
}

impl From<&lockbox_engine::config::ServerLimits> for Limits {
    fn from(c: &lockbox_engine::config::ServerLimits) -> Self {
        // Zero would mean "close at once": treat it as the smallest useful
        // value; a year is the largest (no deadline arithmetic can overflow).
        let secs = |s: u64| Duration::from_secs(s.clamp(1, 365 * 24 * 3600));
        Limits {
            handshake: secs(c.handshake_timeout_secs),
            header: secs(c.header_timeout_secs),
            body: secs(c.body_timeout_secs),
            idle: secs(c.idle_timeout_secs),
            max_connections: c.max_connections.clamp(1, 1 << 20),
            max_connections_per_address: c.max_connections_per_address.clamp(1, 1 << 20),
            response: secs(c.response_timeout_secs),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from(&lockbox_engine::config::ServerLimits::default())
    }
}

/// Accepts connections (TLS when `acceptor` is given, else plain HTTP) and
/// serves `app` on each until `shutdown` completes. At most
/// `limits.max_connections` are served at once, and at most
/// `limits.max_connections_per_address` from one source (further ones from
/// that source are closed at once); each connection is closed when its TLS
/// handshake, a request's headers or body, an idle period, or a request whose
/// response makes no write progress exceeds its limit.
pub async fn serve_connections(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let all_slots = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let per_source = Arc::new(PerSource::default());
    let limits = Arc::new(limits);
    // Tells every connection to finish its requests and close.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    loop {
        // Wait for a free slot before accepting: extra clients queue in the backlog.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => p?,
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // e.g. out of file descriptors: do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // One source may not take every slot: over its share, close at once.
        let Some(source_slot) = per_source.enter(peer.ip(), limits.max_connections_per_address)
        else {
            tracing::debug!(%peer, "too many connections from this source: closed");
            drop(tcp);
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let limits = limits.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _source_slot = source_slot;
            let Some(acceptor) = acceptor else {
                // Plain HTTP carries no client certificate: strip any such header a client sends.
                let app = with_client_certificate(app, None);
                serve_connection(tcp, app, &limits, peer, stopping).await;
                return;
            };
            let tls = match tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| ClientCertificate(c.as_ref().to_vec()));
            tracing::debug!(
                client_certificate = client_cert.is_some(),
                "TLS connection accepted"
            );
            let thumb = client_cert.map(|c| hex::encode(lockbox_crypto::digest::sha1(&c.0)));
            let app = with_client_certificate(app, thumb);
            serve_connection(tls, app, &limits, peer, stopping).await;
        });
    }
    // Shutting down: no new connections; the open ones answer the requests
    // they hold and close, for at most DRAIN.
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all_slots)).await;
    Ok(())
}

/// How long shutting down waits for open connections to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Accepts TLS connections and serves `app` on each until `shutdown`
/// completes, with the default [`Limits`].
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    serve_connections(listener, Some(acceptor), app, Limits::default(), shutdown).await
}

/// How long a connection asked to close gracefully may take before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The source a connection counts against for the per-address limit: the
/// IPv4 address (also when carried as an IPv4-mapped IPv6 address), or the
/// /64 prefix of an IPv6 address (one site or host usually holds a whole /64).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        },
    }
}

/// Open connections per source (see [`source_key`]).
#[derive(Default)]
struct PerSource(std::sync::Mutex<HashMap<IpAddr, usize>>);

impl PerSource {
    /// Counts a new connection from `ip`, or `None` when its source already
    /// holds `max` connections.
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<SourceSlot> {
        let key = source_key(ip);
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            table: self.clone(),
            key,
        })
    }
}

/// One connection counted against its source until dropped.
struct SourceSlot {
    table: Arc<PerSource>,
    key: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Serves HTTP/1.1 or HTTP/2 on one connection with the header, body, idle
/// and response limits.
async fn serve_connection<I>(
    io: I,
    app: axum::Router,
    limits: &Limits,
    peer: SocketAddr,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The peer address reaches the routes as ConnectInfo (throttling of failed logins).
    let app = app.layer(axum::Extension(axum::extract::ConnectInfo(peer)));
    let activity = Arc::new(Activity::new());
    let body_timeout = limits.body;
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            let busy = Busy::enter(&activity);
            async move {
                let req = req.map(|b| TimedBody::new(b, body_timeout));
                let resp = app.oneshot(req).await?;
                // The connection stays busy until the response body has been sent.
                Ok::<_, std::convert::Infallible>(
                    resp.map(|b| axum::body::Body::new(BusyBody { inner: b, busy })),
                )
            }
        })
    };
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64);
    // Writes are watched too: a response fully handed to hyper may still be
    // waiting for a client that does not read.
    let io = ProgressIo {
        inner: io,
        activity: activity.clone(),
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle = limits.idle;
    let response = limits.response;
    // The timers are checked at their deadlines and at least this often: a
    // connection can go from idle to stalled (or back) between two checks.
    let tick = idle.min(response) / 2;
    let wake = tokio::time::sleep(tick);
    tokio::pin!(wake);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stopping.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                wake.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
            }
            _ = wake.as_mut() => {
                if closing {
                    tracing::debug!(%peer, "connection did not close in time: dropped");
                    return;
                }
                let next = match activity.phase() {
                    Phase::Idle(since) if since.elapsed() >= idle => {
                        tracing::debug!(%peer, "idle connection closed");
                        None
                    }
                    Phase::Busy(progress) if progress.elapsed() >= response => {
                        // A client that never reads its response (or a request
                        // that never completes) must not hold its slot forever.
                        tracing::debug!(%peer, "response made no progress: connection closed");
                        None
                    }
                    Phase::Idle(since) => Some((since + idle).min(Instant::now() + tick)),
                    Phase::Busy(progress) => Some((progress + response).min(Instant::now() + tick)),
                };
                match next {
                    Some(at) => wake.as_mut().reset(at.into()),
                    None => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                        wake.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
                    }
                }
            }
        }
    }
}

/// Requests in progress on a connection, when each last made progress, and
/// when the last one ended.
struct Activity {
    state: std::sync::Mutex<ActivityState>,
}

struct ActivityState {
    /// Identifier of the next request.
    next: u64,
    /// Requests in progress: when each arrived or its response last made write progress.
    busy: HashMap<u64, Instant>,
    /// When the last request ended, the connection last wrote, or it opened.
    idle_since: Instant,
    /// Since when the connection has had bytes to write that the client does
    /// not take (a write or flush that could not proceed), if it has.
    write_blocked_since: Option<Instant>,
}

/// What a connection is doing, for its idle and response timers.
enum Phase {
    /// No request in progress since this instant.
    Idle(Instant),
    /// Requests in progress or a write waiting for the client; the one
    /// stalled longest last made progress at this instant.
    Busy(Instant),
}

impl Activity {
    fn new() -> Self {
        Activity {
            state: std::sync::Mutex::new(ActivityState {
                next: 0,
                busy: HashMap::new(),
                idle_since: Instant::now(),
                write_blocked_since: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A stalled request or write makes the connection busy since its last progress.
    fn phase(&self) -> Phase {
        let s = self.lock();
        match s.busy.values().copied().chain(s.write_blocked_since).min() {
            Some(oldest) => Phase::Busy(oldest),
            None => Phase::Idle(s.idle_since),
        }
    }

    /// A write or flush completed (`true`) or could not proceed (`false`).
    fn wrote(&self, done: bool) {
        let mut s = self.lock();
        if done {
            // Writes end a stall but are no activity of the client's: only a
            // finished request moves `idle_since` (an HTTP/2 PING answered
            // every minute must not keep an idle connection open).
            s.write_blocked_since = None;
        } else if s.write_blocked_since.is_none() {
            s.write_blocked_since = Some(Instant::now());
        }
    }
}

/// A connection's I/O that records in its [`Activity`] whether writes proceed.
struct ProgressIo<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I> ProgressIo<I> {
    fn record<T>(&self, r: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        match &r {
            Poll::Ready(Ok(_)) => self.activity.wrote(true),
            Poll::Pending => self.activity.wrote(false),
            // The connection is failing: hyper ends it.
            Poll::Ready(Err(_)) => {}
        }
        r
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ProgressIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ProgressIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.record(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.record(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.record(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Marks a request in progress until dropped.
struct Busy {
    activity: Arc<Activity>,
    id: u64,
}

impl Busy {
    fn enter(a: &Arc<Activity>) -> Self {
        let mut s = a.lock();
        let id = s.next;
        s.next = s.next.wrapping_add(1);
        s.busy.insert(id, Instant::now());
        Busy {
            activity: a.clone(),
            id,
        }
    }

    /// The response made write progress: the connection asked for more of it.
    fn progress(&self) {
        let mut s = self.activity.lock();
        if let Some(t) = s.busy.get_mut(&self.id) {
            *t = Instant::now();
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.activity.lock();
        s.busy.remove(&self.id);
        s.idle_since = Instant::now();
    }
}

/// A response body that keeps its connection busy until it is sent, and
/// records write progress each time the connection asks for more of it.
struct BusyBody {
    inner: axum::body::Body,
    busy: Busy,
}

impl HttpBody for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        // hyper polls the body only when it can write (HTTP/1.1 buffer room,
        // HTTP/2 flow-control window): a client that stops reading stops this.
        self.busy.progress();
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body took longer than the body timeout to arrive.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// A request body that fails with [`BodyTimeout`] when it has not been
/// received within its deadline.
struct TimedBody<B> {
    inner: B,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B: HttpBody> TimedBody<B> {
    fn new(inner: B, timeout: Duration) -> Self {
        let deadline = (!inner.is_end_stream()).then(|| Box::pin(tokio::time::sleep(timeout)));
        TimedBody { inner, deadline }
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some(deadline) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_group_ipv6_by_64_and_mapped_ipv4_as_ipv4() {
        let k = |s: &str| source_key(s.parse().expect("address"));
        assert_eq!(k("192.0.2.7"), k("::ffff:192.0.2.7"));
        assert_ne!(k("192.0.2.7"), k("192.0.2.8"));
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
    }

    #[test]
    fn per_source_limit_counts_open_connections() {
        let table = Arc::new(PerSource::default());
        let a: IpAddr = "2001:db8::1".parse().expect("address");
        let b: IpAddr = "2001:db8::2".parse().expect("address");
        let c: IpAddr = "2001:db9::1".parse().expect("address");
        let first = table.enter(a, 2).expect("first");
        let _second = table.enter(b, 2).expect("second, same /64");
        assert!(table.enter(a, 2).is_none(), "third from the same /64");
        assert!(table.enter(c, 2).is_some(), "another /64 is served");
        drop(first);
        assert!(
            table.enter(a, 2).is_some(),
            "a slot freed by a closed connection"
        );
    }
}
