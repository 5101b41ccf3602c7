//! The connection loop (TLS or plain HTTP): connection limits overall and
//! per source, and the timeouts of each connection.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::progress::{Activity, Busy, BusyBody, Phase, ProgressIo, TimedBody};
use super::{with_client_certificate, ClientCertificate};

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
            serve_accepted(tcp, peer, acceptor, app, &limits, stopping).await;
        });
    }
    // Shutting down: no new connections; the open ones answer the requests
    // they hold and close, for at most DRAIN.
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all_slots)).await;
    Ok(())
}

/// Serves one accepted connection: plain HTTP, or TLS after the handshake
/// (within its time limit), with the client certificate it presented.
async fn serve_accepted(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    app: axum::Router,
    limits: &Limits,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let Some(acceptor) = acceptor else {
        // Plain HTTP carries no client certificate: strip any such header a client sends.
        let app = with_client_certificate(app, None);
        serve_connection(tcp, app, limits, peer, stopping).await;
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
    serve_connection(tls, app, limits, peer, stopping).await;
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

/// HTTP/1.1 with the header timeout, and HTTP/2, on one connection.
fn http_builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64);
    builder
}

/// When to look at a connection again, or `None` when it must close: idle
/// for longer than `idle`, or a response without progress for `response`.
fn next_check(
    activity: &Activity,
    idle: Duration,
    response: Duration,
    tick: Duration,
    peer: SocketAddr,
) -> Option<Instant> {
    match activity.phase() {
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
    let builder = http_builder(limits);
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
                match next_check(&activity, idle, response, tick, peer) {
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
