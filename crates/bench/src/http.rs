//! The loopback HTTP service the benchmarks time, and the client driver
//! that posts prepared bodies to it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use lockbox_engine::Ca;

use crate::stats;

/// Name prefix of the threads the benchmarked service runs on (its own
/// runtime), so its CPU time is told apart from the clients'.
pub(crate) const SERVER_THREADS: &str = "lb-server";

/// The threads that do the benchmarked service's work: its runtime and
/// SQLite's connection workers (PostgreSQL does its share in its own processes).
pub(crate) const SERVICE_THREAD_PREFIXES: [&str; 2] = [SERVER_THREADS, "sqlx-sqlite-wor"];

/// The service (`lockbox_server::router`) on a loopback port, plain HTTP,
/// on a runtime of its own whose threads are named [`SERVER_THREADS`].
pub(crate) struct Service {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    /// Starts the API router over `ca` on 127.0.0.1, a free port.
    pub async fn start(ca: Arc<Ca>) -> Result<Self> {
        let app = lockbox_server::router(ca);
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(stats::cores())
            .thread_name(SERVER_THREADS)
            // Blocking-pool threads live as long as the run, so their CPU
            // time is still readable when it is summed.
            .thread_keep_alive(std::time::Duration::from_secs(3600))
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("{SERVER_THREADS}-main"))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
                runtime.shutdown_background();
            })?;
        Ok(Service {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the service.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Posts every body with `concurrency` clients (client `i` to `urls[i % n]`,
/// one URL per node); returns (sorted latencies ms, errors, seconds).
pub(crate) async fn drive(
    urls: &[String],
    bodies: Vec<Vec<u8>>,
    concurrency: usize,
    token: &str,
) -> Result<(Vec<f64>, usize, f64)> {
    let client = reqwest::Client::new();
    let work = Arc::new(tokio::sync::Mutex::new(bodies.into_iter()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let work = work.clone();
        let client = client.clone();
        let url = urls[i % urls.len().max(1)].clone();
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let next = work.lock().await.next();
                let Some(body) = next else { break };
                let t = Instant::now();
                match client
                    .post(&url)
                    .bearer_auth(&token)
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    stats::sort(&mut latencies);
    Ok((latencies, errors, elapsed))
}

/// Warms the service up with `warmup` (two clients per URL); every request
/// must succeed.
pub(crate) async fn warm_up(urls: &[String], warmup: Vec<Vec<u8>>, token: &str) -> Result<()> {
    let (_, warm_errors, _) = drive(urls, warmup, 2 * urls.len().max(1), token).await?;
    anyhow::ensure!(warm_errors == 0, "warm-up requests failed");
    Ok(())
}

/// Warms the service up with `warmup` ([`warm_up`]), then times `timed`
/// with `concurrency` clients as [`drive`] does.
pub(crate) async fn warm_then_drive(
    urls: &[String],
    warmup: Vec<Vec<u8>>,
    timed: Vec<Vec<u8>>,
    concurrency: usize,
    token: &str,
) -> Result<(Vec<f64>, usize, f64)> {
    warm_up(urls, warmup, token).await?;
    drive(urls, timed, concurrency, token).await
}
